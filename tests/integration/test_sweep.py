"""`mtl sweep`: a 2 × 2 grid × 2 seeds, two processes at a time; a rerun trains nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from mtl_runner.cli import cli
from mtl_runner.errors import UsageError
from mtl_runner.sweep import parse_grid, split_values

GRID = ["--grid", "weighting.name=static,uncertainty", "--grid", "model.trunk.units=[8],[4,4]",
        "--seeds", "2", "--set", "training.epochs=1"]


def test_grid_values_keep_commas_inside_brackets():
    assert split_values("a, b,[64,32],{x: 1, y: 2}") == ["a", "b", "[64,32]", "{x: 1, y: 2}"]
    assert parse_grid(["seed=1,2,1"]) == [("seed", ["1", "2"])]
    with pytest.raises(UsageError, match="KEY=VALUE1,VALUE2"):
        parse_grid(["weighting.name"])


def test_a_bad_grid_value_fails_before_any_training(runner, write_recipe, tmp_path):
    outcome = runner.invoke(cli, ["sweep", str(write_recipe()), "--grid", "weighting.name=static,statc",
                                  "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 2
    assert "statc" in outcome.output and not (tmp_path / "results").exists()


@pytest.mark.slow  # 8 TensorFlow processes: ~80 s on 2 idle cores
def test_sweep_trains_each_combination_once_then_compares(runner, write_recipe, tmp_path):
    recipe, results = str(write_recipe()), tmp_path / "results"
    outcome = runner.invoke(cli, ["sweep", recipe, *GRID, "--jobs", "2", "--results", str(results)])
    assert outcome.exit_code == 0, outcome.output
    assert "Sweep of 8 run(s): 0 done already, 8 to train, 2 at a time." in outcome.output
    assert "[8/8 done, 0 running, 0 left" in outcome.output
    runs = [p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 8
    seen = set()
    for run in runs:
        assert json.loads((run / "run.json").read_text())["status"] == "completed"
        resolved = yaml.safe_load((run / "recipe.yaml").read_text())
        seen.add((resolved["weighting"]["name"], tuple(resolved["model"]["trunk"]["units"]),
                  resolved["seed"], resolved["training"]["epochs"]))
    assert seen == {(w, u, s, 1) for w in ("static", "uncertainty") for u in ((8,), (4, 4))
                    for s in (0, 1)}
    assert "mean ± std over seeds" in outcome.output          # the compare table, 4 groups of 2
    assert outcome.output.count("  2  ") >= 4

    again = runner.invoke(cli, ["sweep", recipe, *GRID, "--jobs", "2", "--results", str(results)])
    assert again.exit_code == 0, again.output
    assert "Sweep of 8 run(s): 8 done already, 0 to train." in again.output
    assert len([p for p in results.iterdir() if p.is_dir() and not p.name.startswith(".")]) == 8

    listed = runner.invoke(cli, ["sweep", recipe, *GRID, "--seeds", "3", "--dry-run",
                                 "--results", str(results)])
    assert "Sweep of 12 run(s): 8 done already, 4 to train" in listed.output
    assert listed.output.count("  todo  ") == 4
