"""Names derived from task names and columns never collide (issue 13)."""

from __future__ import annotations

import itertools

import pytest

from mtl_runner.data.features import input_name
from mtl_runner.errors import RecipeError
from mtl_runner.recipe import load_recipe
from mtl_runner.recipe.names import (GLOBAL_COLUMNS, ambiguous_pair, input_name_clashes, metric_suffixes,
                                     reserved_task_name, task_history_columns, task_of_column)


@pytest.mark.parametrize("name", ["loss", "Loss", "val_loss", "val", "weight", "weight_loss", "weights",
                                  "grad_cosine", "epoch", "stage", "learning_rate", "lr", "total",
                                  "macro", "features", "image", "shared", "shared_dense_0",
                                  "mmoe_gate_a", "cgc_x", "ple_1", "cross_stitch_unit_0"])
def test_reserved_task_names(name):
    assert reserved_task_name(name)


@pytest.mark.parametrize("name", ["age", "accuracy", "weighted", "loss_ratio", "body_weight", "value",
                                  "validity", "gradient_norm", "species", "f1"])
def test_ordinary_task_names(name):
    assert reserved_task_name(name) is None


def test_allowed_names_never_share_a_column():
    """Every pair of allowed names from a tricky pool: no history column in common."""
    pool = ["a", "a_b", "a_macro", "a_loss", "age", "age_group", "accuracy", "f1", "auc", "mae",
            "loss_ratio", "weighted", "val1", "x_r2", "x"]
    allowed = [n for n in pool if reserved_task_name(n) is None]
    every_metric = [m for m in metric_suffixes() if m != "loss"]
    for first, second in itertools.combinations(allowed, 2):
        if ambiguous_pair(first, second):
            continue
        one = set(task_history_columns(first, every_metric))
        other = set(task_history_columns(second, every_metric))
        assert not one & other, (first, second, one & other)
        assert not (one | other) & set(GLOBAL_COLUMNS)
        for column in one:
            assert task_of_column(column, [first, second])[0] == first, column
        for column in other:
            assert task_of_column(column, [first, second])[0] == second, column


def test_pairs_a_reader_could_not_tell_apart():
    assert "could belong to either" in ambiguous_pair("a", "a_macro")
    assert "differ only in case" in ambiguous_pair("Age", "age")
    assert ambiguous_pair("age", "age_group") is None


def test_columns_are_read_back_to_their_owner():
    tasks = ["age", "age_group", "accuracy"]
    assert task_of_column("val_age_group_accuracy", tasks) == ("age_group", "accuracy", "validation")
    assert task_of_column("age_mae", tasks) == ("age", "mae", "train")
    assert task_of_column("accuracy_accuracy", tasks) == ("accuracy", "accuracy", "train")
    assert task_of_column("weight_age_group", tasks) == ("age_group", "weight", "train")
    for column in GLOBAL_COLUMNS:
        assert task_of_column(column, tasks) is None


def test_sanitised_input_names_that_collide_are_found():
    inputs: dict[str, list[str]] = {}
    for column in ["x 1", "x_1", "x-1", "1x", "f_1x", "ok"]:
        inputs.setdefault(input_name(column), []).append(column)
    clashed = {column for column, _ in input_name_clashes(inputs, "shared_bottom")}
    assert clashed == {"x_1", "f_1x"}
    assert input_name_clashes({"shared_dense_0": ["shared_dense_0"]}, "shared_bottom")
    assert not input_name_clashes({"shared_dense_0": ["shared_dense_0"]}, "mmoe")


def test_every_problem_names_the_task_and_its_line(write_recipe):
    path = write_recipe("""\
        name: tiny
        data: {source: csv, path: table.csv, exclude: [tags]}
        tasks:
          kind: {type: classification, label: kind}
          weight: {type: regression, label: target}
          Kind: {type: binary, label: flag}
        """)
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, check_data=False)
    lines = [str(p) for p in caught.value.problems]
    assert lines[0].startswith(f"{path}:5: tasks.weight: 'weight' is reserved")
    assert lines[1].startswith(f"{path}:6: tasks.Kind: tasks 'kind' and 'Kind' differ only in case")
    assert len(lines) == 2
