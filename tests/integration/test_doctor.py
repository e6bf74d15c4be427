"""`mtl doctor`: the environment, and what a recipe would build, without training."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import keras
import pytest
import yaml

from mtl_runner.cli import cli
from mtl_runner.recipe import load_recipe
from mtl_runner.training.stages import stage_plan
from tests.conftest import REPO, TINY_RECIPE, make_table


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


RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))


def parameter_rows(output: str) -> tuple[list[str], dict[str, list[int]]]:
    """The parameter table doctor prints: its stage columns, and each part's numbers."""
    table = output.split("Parameters (trainable in each stage, and in all)\n", 1)[1].split("\n\n")[0]
    header, _, *lines = table.splitlines()
    rows = {}
    for line in lines:
        if line.strip().startswith("("):
            break
        part, *numbers = re.split(r"\s{2,}", line.strip())
        rows[part] = [int(n) for n in numbers]
    return header.split()[1:-1], rows


def recipe_overrides(recipe: Path) -> list[str]:
    """Generated data shrunk to 64 examples, so that a recipe is quick to describe."""
    data = yaml.safe_load(recipe.read_text())
    return ["--set", "data.options.n=64"] if "n" in (data["data"].get("options") or {}) else []


def test_every_recipe_is_checked():
    # recipes in sub-folders too; a new recipe is described by the test below with no change here
    assert len(RECIPES) > len(list((REPO / "recipes").glob("*.yaml")))
    assert (REPO / "recipes" / "pretrain_then_finetune" / "finetune_digits.yaml") in RECIPES


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.relative_to(REPO / "recipes").as_posix()
                                                 for p in RECIPES])
def test_doctor_describes_every_recipe(runner, tmp_path, recipe):
    if recipe.name == "shapes_folder.yaml":  # its images are made by data/make_examples.py
        spec = importlib.util.spec_from_file_location("make_examples", REPO / "data" / "make_examples.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.write_shapes(tmp_path / "data" / "shapes", n=24)
        (tmp_path / "recipes").mkdir()
        recipe = Path(shutil.copy(recipe, tmp_path / "recipes" / recipe.name))
    outcome = runner.invoke(cli, ["doctor", str(recipe), "--results", str(tmp_path / "results"),
                                  *recipe_overrides(recipe)])
    assert outcome.exit_code == 0, outcome.output
    assert "Traceback" not in outcome.output and "No problems found." in outcome.output
    loaded = load_recipe(recipe, [o for o in recipe_overrides(recipe) if o != "--set"])
    stages, rows = parameter_rows(outcome.output)
    assert stages == [stage.name for stage in stage_plan(loaded.recipe)]
    assert {f"head {task}" for task in loaded.recipe.tasks} <= set(rows)
    total = rows["total"]
    assert all(0 < trainable <= total[-1] for trainable in total[:-1])
    # each part's numbers add up to the row `total`, stage by stage and in all
    assert [sum(row[i] for part, row in rows.items() if part != "total")
            for i in range(len(total))] == total
    for stage, trainable in zip(stage_plan(loaded.recipe), total):
        if stage.trainable == "heads" and loaded.recipe.model.backbone is not None:
            assert rows["backbone"][stages.index(stage.name)] == 0
    weights = loaded.recipe.model.backbone.weights if loaded.recipe.model.backbone else "none"
    if weights.startswith("run:"):
        assert f"(built with random backbone weights: `mtl train` loads them from {weights})" \
            in outcome.output
    if weights == "imagenet":  # described offline: doctor never downloads
        assert "`mtl train` downloads the imagenet ones" in outcome.output


MIXED = """\
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
training: {epochs: 1, batch_size: 16}
"""


def test_doctor_describes_a_recipe_whose_tasks_bring_their_own_data(runner, tmp_path):
    make_table(rows=60, seed=1).to_csv(tmp_path / "a.csv", index=False)
    make_table(rows=40, seed=2).to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "mixed.yaml").write_text(MIXED)
    outcome = runner.invoke(cli, ["doctor", str(tmp_path / "mixed.yaml"), "--results", str(tmp_path)])
    assert outcome.exit_code == 0, outcome.output
    out = outcome.output
    assert "100 rows, 2 task(s)" in out
    assert "a.csv (csv): 60 rows, labels kind" in out and "b.csv (csv): 40 rows, labels target" in out
    # each task is labelled on its own source's rows only (a.csv: default split 70/15/15)
    assert re.search(r"\(rows\)\s+66\s+17\s+17", out)
    assert re.search(r"\n\s*kind\s+42\s+9\s+9", out) and re.search(r"\n\s*target\s+24\s+8\s+8", out)
    _, rows = parameter_rows(out)
    # Dense(8) on x1, x2, their missing-value indicators and colour's 3 values + unseen; heads
    # Dense(4) then 3 classes or 1 value
    assert rows == {"trunk": [8 * 7 + 8] * 2, "head kind": [8 * 4 + 4 + 4 * 3 + 3] * 2,
                    "head target": [8 * 4 + 4 + 4 + 1] * 2, "total": [156, 156]}


STAGED = TINY_RECIPE.replace("  trunk: {type: shared_bottom, units: [8]}",
                             "  trunk: {type: mmoe, num_experts: 2, units: [4]}").replace(
    "  epochs: 2\n", "  early_stopping: null\n  stages:\n"
    "    - {name: warmup, epochs: 1, learning_rate: 0.01, trainable: heads}\n"
    "    - {name: all, epochs: 1, learning_rate: 0.001, trainable: all}\n")


def test_doctor_counts_each_stage_s_trainable_parameters_as_training_does(runner, write_recipe,
                                                                          tmp_path):
    recipe = write_recipe(STAGED)
    doctor = runner.invoke(cli, ["doctor", str(recipe), "--results", str(tmp_path / "results")])
    assert doctor.exit_code == 0, doctor.output
    stages, rows = parameter_rows(doctor.output)
    assert stages == ["warmup", "all"]
    trained = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path / "results")])
    assert trained.exit_code == 0, trained.output
    [run] = (tmp_path / "results").iterdir()
    recorded = [s["trainable_parameters"] for s in json.loads((run / "run.json").read_text())["stages"]]
    assert rows["total"][:2] == recorded
    # warm-up: the heads only (the experts and the task gates, in the trunk, stay frozen)
    heads = sum(row[0] for part, row in rows.items() if part.startswith("head "))
    assert recorded[0] == heads and rows["trunk"][0] == 0
    assert recorded[1] == rows["total"][2] > recorded[0]
