"""`mtl compare` pairs runs with the baselines of their own split and says how sure it is;
`mtl train --seeds N --baselines`, `mtl sweep` and `run:` references reuse runs by one identity.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtl_runner.cli import cli
from tests.conftest import TINY_RECIPE
from tests.unit.test_delta_m import split_matters, write_seeds  # noqa: F401 - a fixture

T_975_2 = 4.302652729911275


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_compare_json_gives_the_paired_delta_and_its_interval(split_matters):  # noqa: F811
    result = invoke("compare", "--results", str(split_matters), "--where", "role=mtl",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["n"] == 3 and row["delta_n"] == 3
    assert row["delta_m"] == pytest.approx(-5 / 3)  # mean of −10, +2.5, +2.5
    half = T_975_2 * 7.216878364870322 / 3 ** 0.5
    assert [row["delta_m_ci_low"], row["delta_m_ci_high"]] == pytest.approx([-5 / 3 - half,
                                                                            -5 / 3 + half])
    assert row["negative_transfer"] == [] and row["not_significant"] == []  # b: −20, +5, +5
    assert "Traceback" not in result.output


def test_compare_table_states_the_test_and_shows_the_interval(split_matters):  # noqa: F811
    result = invoke("compare", "--results", str(split_matters))
    assert result.exit_code == 0, result.output
    title, header, _, *rows = result.stdout.splitlines()
    assert "baselines of the same split (a accuracy, b mae)" in title
    assert "paired t-test over seeds, p < 0.05" in title
    assert "Δm %" in header and "95 % CI" in header
    mtl = next(line for line in rows if line.split()[1] == "toy")
    assert re.search(r"-1\.67 ± 7\.22\s+\[-19\.59, \+16\.26\]\s+-\s", mtl)
    delta_p = invoke("compare", "--results", str(split_matters), "--convention", "delta_p")
    assert "Δp %" in delta_p.stdout and "+1.67 ± 7.22" in delta_p.stdout


def test_compare_flags_only_the_significantly_worse_task(tmp_path):
    write_seeds(tmp_path,
                [{"a.accuracy": a, "b.mae": b}
                 for a, b in ((0.64, 10.5), (0.65, 9.6), (0.63, 10.2))],
                [{"a.accuracy": 0.8}] * 3, [{"b.mae": 10.0}] * 3)
    result = invoke("compare", "--results", str(tmp_path), "--where", "role=mtl")
    assert result.exit_code == 0, result.output
    mtl = result.stdout.splitlines()[3]
    assert re.search(r"a \(p=0\.0013\); b n\.s\.", mtl)  # a +20 % on every seed; b noise


def test_compare_warns_once_about_few_runs_and_few_test_rows(tmp_path):
    write_seeds(tmp_path, [{"a.accuracy": 0.9, "b.mae": 1.0}] * 2, [{"a.accuracy": 0.8}] * 2,
                [{"b.mae": 1.0}] * 2, n=8)
    result = invoke("compare", "--results", str(tmp_path))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 2
    assert "3 group(s) have fewer than 3 runs" in warnings[0]
    assert "fewer than 20 labelled test rows for a in 4 run(s) (n = 8)" in warnings[1]


def test_an_unknown_primary_metric_is_a_recipe_error(write_recipe):
    recipe = write_recipe(TINY_RECIPE.replace("target: {type: regression, label: target}",
                                              "target: {type: regression, label: target, "
                                              "primary_metric: r3}"))
    result = invoke("validate", str(recipe))
    assert result.exit_code == 2, result.output
    assert re.search(r"recipe\.yaml:9: tasks\.target\.primary_metric: must be one of the "
                     r"task's metrics\. Received: 'r3'\. Choose from: mae, rmse, r2", result.output)
    assert "Traceback" not in result.output


def test_seeds_and_baselines_reuse_a_completed_identical_run(runner, write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE.replace("  target: {type: regression, label: target}\n", "")
                          .replace("  flag: {type: binary, label: flag}\n", ""))
    results = tmp_path / "results"
    common = ["--results", str(results), "--set", "training.epochs=1"]
    first = runner.invoke(cli, ["train", str(recipe), *common])
    assert first.exit_code == 0, first.output
    [seed0] = [p.name for p in results.iterdir() if p.is_dir()]

    plan = runner.invoke(cli, ["train", str(recipe), *common, "--seeds", "3", "--baselines"])
    assert plan.exit_code == 0, plan.output
    assert f"[1/6] tiny (seed 0): reusing {seed0}" in plan.output
    infos = [json.loads((p / "run.json").read_text()) for p in results.iterdir() if p.is_dir()]
    assert sorted(i["role"] for i in infos) == ["baseline:kind"] * 3 + ["mtl"] * 3
    table = runner.invoke(cli, ["compare", "--results", str(results), "--where", "role=mtl",
                                "--format", "json"])
    assert table.exit_code == 0, table.output
    [row] = json.loads(table.stdout)
    assert row["n"] == 3 and seed0 in row["runs"]
    assert row["delta_n"] == 3  # each seed paired with the baseline of its own split
