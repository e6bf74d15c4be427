"""Cases a hostile tester found after the first round of issue 13 fixes: each refused clearly,
nothing lost, nothing hung."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE, make_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(results folder, run folder) of a tiny one-epoch run."""
    folder = tmp_path_factory.mktemp("hostile")
    make_table().to_csv(folder / "table.csv", index=False)
    (folder / "recipe.yaml").write_text(TINY_RECIPE.replace("epochs: 2", "epochs: 1"))
    outcome = CliRunner().invoke(cli, ["train", str(folder / "recipe.yaml"), "--results",
                                       str(folder / "results")])
    assert outcome.exit_code == 0, outcome.output
    [run] = list((folder / "results").iterdir())
    return folder / "results", run


def mtl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_runner", *args], cwd=cwd, timeout=120,
                          capture_output=True, text=True)


def test_a_task_named_like_another_task_s_prediction_column_is_refused(tmp_path):
    make_table().to_csv(tmp_path / "table.csv", index=False)
    recipe = TINY_RECIPE.replace("  target: {type: regression, label: target}",
                                 "  kind_probability: {type: regression, label: target}")
    (tmp_path / "r.yaml").write_text(recipe)
    outcome = CliRunner().invoke(cli, ["validate", str(tmp_path / "r.yaml")])
    assert outcome.exit_code == 2
    assert "tasks.kind_probability" in outcome.output and "'kind_probability'" in outcome.output
    assert "Traceback" not in outcome.output


def test_export_overwrite_never_replaces_a_folder_that_is_not_an_earlier_export(trained, tmp_path):
    results, run = trained
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    for target in (mine, results, run):
        outcome = CliRunner().invoke(cli, ["export", run.name, "--results", str(results), "-o",
                                           str(target), "--overwrite"])
        assert outcome.exit_code == 2, outcome.output
        assert "never replaced" in outcome.output and "Traceback" not in outcome.output
    assert (mine / "thesis.tex").read_text() == "precious"
    assert (run / "run.json").exists() and (run / "model.keras").exists()


def test_predict_overwrite_never_replaces_a_run_file(trained, tmp_path):
    results, run = trained
    before = (run / "metrics.csv").read_bytes()
    outcome = CliRunner().invoke(cli, ["predict", run.name, "--results", str(results), "--data",
                                       str(results.parent / "table.csv"), "-o",
                                       str(run / "metrics.csv"), "--overwrite"])
    assert outcome.exit_code == 2 and "file of the run" in outcome.output
    assert (run / "metrics.csv").read_bytes() == before


def test_fifos_and_devices_in_a_results_folder_are_skipped_not_read(trained, tmp_path):
    results, run = trained
    odd = tmp_path / "odd"
    odd.mkdir()
    shutil.copytree(run, odd / run.name)
    (odd / "fifo-run").mkdir()
    os.mkfifo(odd / "fifo-run" / "run.json")
    (odd / "zero-run").mkdir()
    os.symlink("/dev/zero", odd / "zero-run" / "run.json")
    for command in (["runs"], ["compare"], ["show", run.name]):
        done = mtl(*command, "--results", str(odd), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    done = mtl("compare", "--results", str(odd), cwd=tmp_path)
    assert "fifo-run: run.json: the run file is a FIFO" in done.stderr
    assert "zero-run: run.json: the run file is a character device" in done.stderr


def test_a_file_that_is_not_a_table_has_none_of_its_lines_quoted(tmp_path):
    secret = "sk-live-hunter2"
    (tmp_path / "tokens.txt").write_text("".join(f"token{i}={secret}{i:04d}\n" for i in range(30)))
    (tmp_path / "r.yaml").write_text("name: h\ndata: {source: csv, path: tokens.txt}\n"
                                     "tasks: {c: {type: classification, label: c}}\n")
    outcome = CliRunner().invoke(cli, ["validate", str(tmp_path / "r.yaml")])
    assert outcome.exit_code == 2 and "did not read as a table" in outcome.output
    assert secret not in outcome.output


def test_identifiers_in_a_table_are_not_quoted(tmp_path):
    frame = make_table(40).assign(password=[f"pw-{i}-hunter2" for i in range(40)])
    frame.to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "r.yaml").write_text(TINY_RECIPE)
    outcome = CliRunner().invoke(cli, ["validate", str(tmp_path / "r.yaml")])
    assert outcome.exit_code == 2 and "'password' is text with 40 distinct values" in outcome.output
    assert "hunter2" not in outcome.output


@pytest.mark.parametrize("column, value, command, message", [
    ("target", np.inf, "evaluate", "task 'target': regression label column 'target': 1 of 64"),
    ("target", 1e30, "evaluate", "beyond ±1e+15"),
    ("x1", np.inf, "predict", "feature column 'x1': 1 of 64 cells are infinite"),
    ("x1", 1e30, "predict", "beyond ±1e+18"),
])
def test_new_data_beyond_what_training_accepts_is_refused(trained, tmp_path, column, value,
                                                          command, message):
    results, run = trained
    frame = make_table()
    frame.loc[7, column] = value
    frame.to_csv(tmp_path / "new.csv", index=False)
    outcome = CliRunner().invoke(cli, [command, run.name, "--results", str(results), "--data",
                                       str(tmp_path / "new.csv"), "--no-save"]
                                 if command == "evaluate" else
                                 [command, run.name, "--results", str(results), "--data",
                                  str(tmp_path / "new.csv"), "-o", str(tmp_path / "out.csv")])
    assert outcome.exit_code == 2, outcome.output
    assert message in outcome.output and "Traceback" not in outcome.output
    assert not (tmp_path / "out.csv").exists()


def test_a_task_weight_that_would_overflow_is_refused_at_validate(tmp_path):
    make_table().to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "r.yaml").write_text(TINY_RECIPE)
    outcome = CliRunner().invoke(cli, ["validate", str(tmp_path / "r.yaml"), "--set",
                                       "tasks.kind.weight=1e308"])
    assert outcome.exit_code == 2
    assert "tasks.kind.weight: a task weight is at most 1e+06" in outcome.output
