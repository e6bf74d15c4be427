"""Tasks with their own examples: one stream, masks per task, sampling across sources."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd
import pytest

from mtl_runner.cli import cli
from mtl_runner.recipe import load_recipe
from mtl_runner.recipe.schema import SamplingConfig
from mtl_runner.training.prepare import prepare, source_shares
from tests.conftest import make_table

RECIPE = """\
name: mixed
tasks:
  kind:
    type: classification
    label: kind
    data: {source: csv, path: a.csv, exclude: [flag, target, tags]}
  target:
    type: regression
    label: target
    data: {source: csv, path: b.csv, exclude: [kind, flag, tags], split: {validation: 0.2, test: 0.2}}
model: {trunk: {type: shared_bottom, units: [8]}, heads: {units: [4]}}
training: {epochs: 2, batch_size: 16, sampling: {method: SAMPLING}}
"""


@pytest.fixture
def mixed_recipe(tmp_path):
    make_table(rows=60, seed=1).to_csv(tmp_path / "a.csv", index=False)
    make_table(rows=40, seed=2).to_csv(tmp_path / "b.csv", index=False)

    def write(sampling: str = "proportional"):
        path = tmp_path / "mixed.yaml"
        path.write_text(textwrap.dedent(RECIPE.replace("SAMPLING", sampling)))
        return path

    return write


def test_each_task_is_labelled_only_on_its_own_rows(mixed_recipe):
    loaded = load_recipe(mixed_recipe())
    assert [tasks for _, tasks in loaded.recipe.data_groups()] == [["kind"], ["target"]]
    prepared = prepare(loaded.frames[0], loaded.recipe, loaded.frames)
    assert prepared.sizes == {"train": 42 + 24, "validation": 9 + 8, "test": 9 + 8}
    train = prepared.labels["train"]
    sources = prepared.sources["train"]
    assert np.array_equal(train["kind"].mask, (sources == 0).astype("float32"))
    assert np.array_equal(train["target"].mask, (sources == 1).astype("float32"))
    assert not train["kind"].y[sources == 1].any()  # no label leaks from the other source
    assert sorted(prepared.x["train"]) == ["colour", "x1", "x2"]


def test_mixed_recipe_trains_and_counts_each_task_on_its_own_test_rows(runner, mixed_recipe, tmp_path):
    outcome = runner.invoke(cli, ["train", str(mixed_recipe("uniform")), "--results", str(tmp_path / "r")])
    assert outcome.exit_code == 0, outcome.output
    [run] = list((tmp_path / "r").iterdir())
    metrics = pd.read_csv(run / "metrics.csv")
    test = metrics[metrics.split == "test"].groupby("task")["n"].first()
    assert test["kind"] == 9 and test["target"] == 8
    assert json.loads((run / "run.json").read_text())["splits"]["train"] == 66


def test_sources_must_share_feature_columns(mixed_recipe, tmp_path):
    from mtl_runner.errors import RecipeError

    with pytest.raises(RecipeError, match="every task's data must have the same feature columns"):
        load_recipe(mixed_recipe(), ["tasks.target.data.exclude=[kind, flag]"])


@pytest.mark.parametrize("method, expected", [
    ("proportional", [0.8, 0.2]), ("uniform", [0.5, 0.5]), ("temperature", [2 / 3, 1 / 3])])
def test_source_shares(method, expected):
    shares = source_shares(np.array([400, 100]), SamplingConfig(method=method, temperature=2.0))
    assert np.allclose(shares, expected)
