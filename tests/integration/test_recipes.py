"""Every recipe in recipes/ validates and trains; the quickstart reaches its quality bar."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mtl_runner.cli import cli
from tests.conftest import REPO

RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if "# needs-network" not in p.read_text())


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(p.relative_to(REPO / "recipes")) for p in RECIPES])
def test_every_recipe_validates_and_trains_one_epoch(runner, tmp_path, recipe):
    assert runner.invoke(cli, ["validate", str(recipe)]).exit_code == 0
    outcome = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path),
                                  "--set", "training.epochs=1"])
    assert outcome.exit_code == 0, outcome.output
    [run] = list(tmp_path.iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_quickstart_reaches_the_documented_test_metrics(runner, tmp_path):
    """Seed 0, default recipe: species accuracy ≥ 0.95, sex accuracy ≥ 0.80, MAE ≤ 320 g."""
    outcome = runner.invoke(cli, ["train", str(REPO / "recipes" / "quickstart.yaml"),
                                  "--results", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    [run] = list(tmp_path.iterdir())
    metrics = pd.read_csv(run / "metrics.csv")
    test = metrics[metrics.split == "test"].set_index(["task", "metric"])["value"]
    assert test["species", "accuracy"] >= 0.95
    assert test["sex", "accuracy"] >= 0.80
    assert test["body_mass", "mae"] <= 320.0
