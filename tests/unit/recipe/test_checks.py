"""Cross-field checks, through the public loader."""

from __future__ import annotations

import pandas as pd
import pytest

from mtl_runner.errors import RecipeError
from mtl_runner.recipe import load_recipe
from tests.conftest import TINY_RECIPE


def messages(path, overrides=()) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, overrides)
    return [str(p) for p in caught.value.problems]


def test_classification_needs_two_classes(write_recipe, tmp_path):
    frame = pd.read_csv(tmp_path / "table.csv")
    frame["kind"] = "a"
    frame.to_csv(tmp_path / "table.csv", index=False)
    [message] = messages(write_recipe())
    assert "tasks.kind.label: a classification label needs at least 2 classes" in message


def test_regression_label_must_be_numeric(write_recipe):
    # column target, no longer a label, is left out: as a feature its input would be named
    # like task target's output layer, a second problem
    [message] = messages(write_recipe(), ["tasks.target.label=colour", "data.exclude=[tags, target]"])
    assert "tasks.target.label: a regression label must be numeric" in message
    assert "64 non-numeric value(s)" in message
    # cells are never quoted: the file may not be the table it was meant to be (issue 13)
    assert not any(word in message for word in ("'red'", "'green'", "'blue'"))


def test_binary_needs_two_values(write_recipe):
    [message] = messages(write_recipe(), ["tasks.flag.label=colour", "data.exclude=[tags, flag]"])
    assert "a binary label needs exactly 2 distinct values; column 'colour' has 3" in message


def test_unknown_loss_for_the_task_type(write_recipe):
    [message] = messages(write_recipe(), ["tasks.target.loss=hubber"])
    assert "tasks.target.loss: unknown loss for a regression task" in message
    assert "Did you mean 'huber'?" in message


def test_unknown_metric(write_recipe):
    [message] = messages(write_recipe(), ["tasks.kind.metrics=[accuracy, macro_f]"])
    assert "tasks.kind.metrics.1: unknown metric for a classification task" in message
    assert "Did you mean 'macro_f1'?" in message


def test_early_stopping_monitor_must_be_recorded(write_recipe):
    [message] = messages(write_recipe(), ["training.early_stopping.monitor=val_kind_acuracy"])
    assert "Did you mean 'val_kind_accuracy'?" in message


def test_label_cannot_be_a_feature(write_recipe):
    [message] = messages(write_recipe(), ["data.features=[x1, kind]"])
    assert "'kind' is a label; a label cannot also be a feature" in message


def test_missing_error_mode_refuses_missing_features(write_recipe):
    [message] = messages(write_recipe(), ["data.missing=error"])
    assert "feature columns have missing values: x2" in message


def test_split_fractions_must_leave_training_rows(write_recipe):
    [message] = messages(write_recipe(), ["data.split.validation=0.5", "data.split.test=0.5"])
    assert "validation + test must be below 1" in message


def test_data_file_not_found_points_at_data_path(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("path: table.csv", "path: missing.csv"))
    [message] = messages(path)
    assert message.startswith(f"{path}:4: data.path: data file not found")


def test_unknown_builtin_dataset(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("source: csv\n  path: table.csv", "source: builtin\n  name: pengiuns"))
    [message] = messages(path)
    assert "data.name: unknown builtin dataset 'pengiuns'. Did you mean 'penguins'?" in message


@pytest.mark.parametrize("override, expected", [
    ("tasks.kind.positive=a", "tasks.kind.positive: `positive` applies to binary tasks only"),
    ("tasks.flag.standardize=false",
     "tasks.flag.standardize: `standardize` applies to regression tasks only"),
    ("tasks.target.delimiter=;", "tasks.target.delimiter: `delimiter` applies to multilabel tasks only"),
])
def test_an_option_of_another_task_type_is_refused(write_recipe, override, expected):
    [message] = messages(write_recipe(), [override])
    assert expected in message


def test_a_class_label_is_one_column(write_recipe):
    [message] = messages(write_recipe(), ["tasks.flag.label=[flag, x1]"])
    assert "tasks.flag.label: a binary task reads one label column" in message
