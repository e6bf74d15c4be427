"""`mtl train --seeds N --baselines`: one multi-task run per seed, each task alone beside it."""

from __future__ import annotations

import json

import pytest

from mtl_runner.cli import cli
from mtl_runner.errors import UsageError
from mtl_runner.training.plan import parse_seeds
from tests.conftest import TINY_RECIPE


def infos(results):
    return [json.loads((p / "run.json").read_text()) for p in sorted(results.iterdir()) if p.is_dir()]


def test_seeds_and_baselines_then_reuse(runner, write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE.replace("  target: {type: regression, label: target}\n", ""))
    results = tmp_path / "results"
    args = ["train", str(recipe), "--results", str(results), "--seeds", "2", "--baselines",
            "--set", "training.epochs=1"]
    outcome = runner.invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    assert "[1/6] tiny (seed 0)" in outcome.output and "[6/6] baseline:flag (seed 1)" in outcome.output
    runs = infos(results)
    assert len(runs) == 6 and all(r["status"] == "completed" for r in runs)
    by_role = {}
    for run in runs:
        by_role.setdefault(run["role"], []).append(run)
    assert sorted(by_role) == ["baseline:flag", "baseline:kind", "mtl"]
    assert sorted(r["seed"] for r in by_role["mtl"]) == [0, 1]
    parents = {r["id"]: r["seed"] for r in by_role["mtl"]}
    for run in by_role["baseline:kind"] + by_role["baseline:flag"]:
        assert parents[run["parent"]] == run["seed"]          # each baseline points at its seed's run
        assert run["splits"] == by_role["mtl"][0]["splits"]   # and splits the data the same way
        features = run["features"]["numeric"] + run["features"]["categorical"]
        assert "kind" not in features and "flag" not in features  # no label leaks in as a feature

    table = runner.invoke(cli, ["compare", "--results", str(results), "--where", "role=mtl",
                                "--format", "json"])
    assert table.exit_code == 0, table.output
    [row] = json.loads(table.stdout)  # the baselines match: Δm is computed
    assert row["n"] == 2 and isinstance(row["delta_m"], float)

    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing") == 6  # the same runs (identity): nothing trains again
    assert len(infos(results)) == 6


@pytest.mark.parametrize("text, seeds", [(None, [7]), ("3", [7, 8, 9]), ("0,5", [0, 5])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text, 7) == seeds


def test_bad_seeds():
    with pytest.raises(UsageError, match="--seeds takes N or a list"):
        parse_seeds("two", 0)
