"""Every recipe in recipes/ validates and trains; the quickstart reaches its quality bar."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from mtl_runner.cli import cli
from tests.conftest import REPO

RECIPES = REPO / "recipes"
STANDALONE = sorted(p for p in RECIPES.glob("*.yaml") if "# needs-network" not in p.read_text())


def one_epoch(recipe) -> list[str]:
    """Overrides that shrink a recipe to one epoch (per stage) and, for generated data, 64 rows."""
    data = yaml.safe_load(recipe.read_text())
    overrides = ["--set", "training.epochs=1"]
    for i, _ in enumerate(data.get("training", {}).get("stages") or []):
        overrides += ["--set", f"training.stages.{i}.epochs=1"]
    if "n" in (data.get("data") or {}).get("options", {}):
        overrides += ["--set", "data.options.n=64"]
    return overrides


def only_completed_run(folder):
    runs = [json.loads((p / "run.json").read_text()) for p in folder.iterdir()]
    assert [r["status"] for r in runs] == ["completed"]
    return runs[0]


@pytest.fixture(scope="module")
def example_data():
    """data/shapes/ is generated, not committed: make it as a new user would."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_examples", REPO / "data" / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not (REPO / "data" / "shapes").is_dir():
        module.write_shapes(REPO / "data" / "shapes")
    return module


def test_the_committed_wine_table_is_what_the_script_writes(example_data, tmp_path):
    example_data.write_wine(tmp_path / "wine.csv")
    assert (tmp_path / "wine.csv").read_bytes() == (REPO / "data" / "wine.csv").read_bytes()


@pytest.mark.parametrize("recipe", STANDALONE, ids=[p.name for p in STANDALONE])
def test_every_recipe_validates_and_trains_one_epoch(runner, tmp_path, recipe, example_data):
    assert runner.invoke(cli, ["validate", str(recipe)]).exit_code == 0
    outcome = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path), *one_epoch(recipe)])
    assert outcome.exit_code == 0, outcome.output
    only_completed_run(tmp_path)


def test_the_network_recipe_trains_offline_with_weights_none(runner, tmp_path):
    recipe = RECIPES / "finetune_resnet50.yaml"
    outcome = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path), *one_epoch(recipe),
                                  "--set", "model.backbone.weights=none", "--set", "data.image.size=32",
                                  # as with its ImageNet weights (batch_norm auto → frozen)
                                  "--set", "model.backbone.batch_norm=frozen",
                                  "--set", "data.options.size=32"])
    assert outcome.exit_code == 0, outcome.output
    only_completed_run(tmp_path)


def test_pretrain_then_finetune_starts_from_the_pretrained_run(runner, tmp_path):
    folder = RECIPES / "pretrain_then_finetune"
    first = runner.invoke(cli, ["train", str(folder / "pretrain_digits.yaml"), "--results", str(tmp_path),
                                *one_epoch(folder / "pretrain_digits.yaml")])
    assert first.exit_code == 0, first.output
    [pretrain] = list(tmp_path.iterdir())
    second = runner.invoke(cli, ["train", str(folder / "finetune_digits.yaml"), "--results", str(tmp_path),
                                 *one_epoch(folder / "finetune_digits.yaml")])
    assert second.exit_code == 0, second.output
    [finetune] = [p for p in tmp_path.iterdir() if p != pretrain]
    info = json.loads((finetune / "run.json").read_text())
    assert info["status"] == "completed" and info["parent"] == pretrain.name


def test_quickstart_reaches_the_documented_test_metrics(runner, tmp_path):
    """Seed 0, default recipe: species accuracy ≥ 0.95, sex accuracy ≥ 0.80, MAE ≤ 320 g."""
    outcome = runner.invoke(cli, ["train", str(RECIPES / "quickstart.yaml"), "--results", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    [run] = list(tmp_path.iterdir())
    metrics = pd.read_csv(run / "metrics.csv")
    test = metrics[metrics.split == "test"].set_index(["task", "metric"])["value"]
    assert test["species", "accuracy"] >= 0.95
    assert test["sex", "accuracy"] >= 0.80
    assert test["body_mass", "mae"] <= 320.0
