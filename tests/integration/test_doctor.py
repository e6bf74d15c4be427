"""`mtl doctor`: the environment, and what a recipe would build, without training."""

from __future__ import annotations

import re

import keras

from mtl_runner.cli import cli


def test_doctor_reports_the_environment(runner, tmp_path):
    outcome = runner.invoke(cli, ["doctor", "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 0, outcome.output
    out = outcome.output
    assert f"keras       {keras.__version__}" in out and "tensorflow  2." in out
    assert re.search(r"gpus\s+(none visible|\d+)", out) and "mixed_bfloat16 on CPU: " in out
    assert f"{tmp_path / 'results'}: will be created in {tmp_path} (writable)" in out
    assert not (tmp_path / "results").exists()  # doctor creates nothing
    assert "cluster     this machine only" in out


def test_doctor_says_which_worker_tf_config_makes_this_machine(runner, tmp_path):
    cluster = '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}'
    outcome = runner.invoke(cli, ["doctor", "--results", str(tmp_path)], env={"TF_CONFIG": cluster})
    assert outcome.exit_code == 0, outcome.output
    assert "cluster     worker 1 of 2 workers (TF_CONFIG), not the chief" in outcome.output
    broken = runner.invoke(cli, ["doctor", "--results", str(tmp_path)], env={"TF_CONFIG": "{"})
    assert broken.exit_code == 1
    assert "TF_CONFIG is not a usable cluster description" in broken.output


def test_doctor_builds_a_recipe_without_training(runner, write_recipe, tmp_path):
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["doctor", str(write_recipe()), "--results", str(results)])
    assert outcome.exit_code == 0, outcome.output
    out = outcome.output
    assert re.search(r"x1\s+\(None, 1\)\s+float32", out)
    assert re.search(r"colour\s+\(None, 1\)\s+string", out)
    assert re.search(r"kind\s+\(None, 3\)\s+classification", out)
    # heads: Dense(4) then the output layer
    trunk = int(re.search(r"trunk\s+(\d+)\s+\d+", out).group(1))
    kind = int(re.search(r"head kind\s+(\d+)\s+\d+", out).group(1))
    # Dense(8) on 7 columns: x1, x2, x2's missing-value indicator, colour's 3 values + unseen
    assert kind == 8 * 4 + 4 + 4 * 3 + 3 and trunk == 8 * 7 + 8
    assert re.search(r"head flag\s+41\s+41", out) and re.search(r"head target\s+41\s+41", out)
    assert re.search(rf"total\s+{trunk + kind + 41 + 41}\s+{trunk + kind + 41 + 41}", out)
    assert re.search(r"\(rows\)\s+44\s+10\s+10", out)
    counts = {task: [int(n) for n in re.search(rf"\n\s*{task}\s+(\d+)\s+(\d+)\s+(\d+)", out).groups()]
              for task in ("kind", "flag", "target")}
    assert counts["kind"] == counts["target"] == [44, 10, 10]
    # the one missing flag label (row 5) is not counted, in whichever split it fell
    assert sum(counts["flag"]) == 63 and all(0 <= r - f <= 1 for r, f in zip([44, 10, 10],
                                                                         counts["flag"]))
    assert not results.exists()  # nothing trained, no run folder


def test_doctor_names_an_unwritable_results_folder(runner, tmp_path):
    (tmp_path / "file").write_text("x")
    outcome = runner.invoke(cli, ["doctor", "--results", str(tmp_path / "file" / "results")])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert f"Error: the results folder {tmp_path / 'file' / 'results'} is not writable" in outcome.output


def test_doctor_refuses_a_bad_recipe_like_validate(runner, write_recipe):
    outcome = runner.invoke(cli, ["doctor", str(write_recipe("name: x\ntasks: 5\n"))])
    assert outcome.exit_code == 2 and "Traceback" not in outcome.output
    assert re.search(r"recipe.yaml:\d+: (data|tasks)", outcome.output)
