"""`mtl train`, `mtl validate` and `mtl schema` driven through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE


def only_run(results):
    [run] = [p for p in results.iterdir() if p.is_dir()]
    return run


def test_train_writes_a_complete_run_directory(runner, write_recipe, tmp_path):
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results),
                                  "--set", "training.epochs=3"])
    assert outcome.exit_code == 0, outcome.output
    run = only_run(results)
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints", "history.csv", "metrics.csv", "model.keras", "recipe.yaml", "run.json", "tb"]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["error"] is None
    assert info["seed"] == 0 and info["device"] == "cpu" and info["epochs"] == 3
    assert info["splits"] == {"train": 44, "validation": 10, "test": 10}
    assert info["versions"]["keras"].startswith("3.")

    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved["training"]["epochs"] == 3                         # the override
    assert resolved["training"]["optimizer"]["learning_rate"] == 0.001  # a default, filled in

    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    for column in ("loss", "val_loss", "kind_accuracy", "val_flag_auc", "target_mae", "val_target_r2"):
        assert column in history.columns

    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == ["task", "metric", "split", "value", "n"]
    assert set(metrics["split"]) == {"train", "validation", "test"}
    test = metrics[metrics.split == "test"].set_index(["task", "metric"])["value"]
    assert set(test.index) == {("kind", "accuracy"), ("kind", "macro_f1"), ("flag", "accuracy"),
                               ("flag", "f1"), ("flag", "auc"), ("target", "mae"),
                               ("target", "rmse"), ("target", "r2")}
    # the test scores, recomputed from the saved model on the test rows of the same split
    import keras
    import numpy as np

    from mtl_runner.data.splits import split_indices

    frame = pd.read_csv(tmp_path / "table.csv")
    split = resolved["data"]["split"]
    strata = (frame[split["stratify"]].astype(str).to_numpy()
              if isinstance(split.get("stratify"), str) else None)
    rows = frame.iloc[split_indices(len(frame), split["validation"], split["test"], 0,
                                    strata)["test"]]
    assert len(rows) == 10
    import tensorflow as tf

    model = keras.saving.load_model(run / "model.keras")
    outputs = model.predict(tf.data.Dataset.from_tensor_slices(
        {"x1": rows[["x1"]].to_numpy("float32"), "x2": rows[["x2"]].to_numpy("float32"),
         "colour": rows[["colour"]].to_numpy().astype(str)}).batch(16), verbose=0)
    classes = np.array(info["label_encoding"]["kind"]["classes"])
    accuracy = np.mean(classes[outputs["kind"].argmax(axis=1)] == rows["kind"].to_numpy())
    assert test["kind", "accuracy"] == pytest.approx(accuracy, abs=1e-6)
    target = info["label_encoding"]["target"]
    grams = outputs["target"][:, 0] * target["scale"][0] + target["mean"][0]
    assert test["target", "mae"] == pytest.approx(np.mean(np.abs(grams - rows["target"])), rel=1e-4)
    # the table printed at the end matches the file
    assert f"{test['kind', 'accuracy']:.4f}" in outcome.output
    assert str(run) in outcome.output


def test_missing_labels_are_masked_not_dropped(runner, write_recipe, tmp_path):
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results),
                                  "--set", "data.split.validation=0", "--set", "data.split.test=0",
                                  "--set", "training.early_stopping.monitor=loss"])
    assert outcome.exit_code == 0, outcome.output
    metrics = pd.read_csv(only_run(results) / "metrics.csv")
    counts = metrics[metrics.metric.isin(["accuracy", "mae"])].set_index("task")["n"]
    assert counts["kind"] == 64 and counts["target"] == 64 and counts["flag"] == 63  # one flag is missing


def test_run_name_and_results_from_the_environment(runner, write_recipe, tmp_path):
    results = tmp_path / "env-results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--name", "my-run.1",
                                  "--set", "training.epochs=1"], env={"MTL_RESULTS": str(results)})
    assert outcome.exit_code == 0, outcome.output
    run = only_run(results)
    assert "-my-run.1-" in run.name
    assert json.loads((run / "run.json").read_text())["name"] == "my-run.1"


def test_a_bad_run_name_is_a_usage_error(runner, write_recipe, tmp_path):
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--name", "a/b",
                                  "--results", str(tmp_path / "r")])
    assert outcome.exit_code == 2
    assert "Error: --name may hold only letters, digits, '.', '_' and '-'. Received: 'a/b'" in outcome.output
    assert not (tmp_path / "r").exists()


def test_a_failure_during_the_run_marks_it_failed(runner, write_recipe, tmp_path):
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results),
                                  "--set", "training.optimizer.learning_rate=10",
                                  "--set", "training.optimizer.name=sgd",
                                  "--set", "model.trunk.units=[256, 256, 256]",
                                  "--set", "training.epochs=30"])
    assert outcome.exit_code == 1, outcome.output
    assert "the loss became NaN or Inf at epoch" in outcome.output
    assert "Traceback" not in outcome.output
    info = json.loads((only_run(results) / "run.json").read_text())
    assert info["status"] == "failed" and "NaN" in info["error"]
    assert (only_run(results) / "history.csv").exists()  # what was written before stays


def test_validate_reports_ok(runner):
    outcome = runner.invoke(cli, ["validate", str(REPO / "recipes" / "quickstart.yaml")])
    assert outcome.exit_code == 0, outcome.output
    assert "OK. 3 task(s): species (classification), sex (binary), body_mass (regression)" in outcome.output
    assert "344 rows" in outcome.output


def test_schema_is_json_schema_of_the_recipe(runner):
    outcome = runner.invoke(cli, ["schema"])
    assert outcome.exit_code == 0
    schema = json.loads(outcome.output)
    assert schema["title"] == "mtl recipe"
    assert set(schema["required"]) == {"name", "tasks"}  # data may sit on each task instead
    assert schema["additionalProperties"] is False
    task = schema["$defs"]["TaskConfig"]["properties"]["type"]
    assert set(task["enum"]) == {"classification", "binary", "multilabel", "regression"}


BAD_RECIPES = [
    ("misspelled key", ("  batch_size: 16", "  bach_size: 16"), ":15: training.bach_size: unknown key. Did you mean 'batch_size'?"),
    ("wrong type", ("epochs: 2", "epochs: [2]"), ":14: training.epochs: "),
    ("missing label column", ("label: flag", "label: flg"), ":8: tasks.flag.label: label column 'flg' is not a column"),
    ("unknown task type", ("type: binary", "type: binry"), ":8: tasks.flag.type: unknown value. Received: 'binry'. Did you mean 'binary'?"),
]


@pytest.mark.parametrize("case, change, expected", BAD_RECIPES, ids=[c[0] for c in BAD_RECIPES])
def test_bad_recipes_fail_fast_with_exit_2_and_no_traceback(write_recipe, tmp_path, case, change, expected):
    path = write_recipe(TINY_RECIPE.replace(*change))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mtl_runner", "train", str(path), "--results",
                           str(tmp_path / "results")], capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"Error: {path}{expected}"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "results").exists()
    assert elapsed < 10  # the goal is < 2 s; a loose bound keeps a busy CI machine from flaking


def test_help_validate_and_schema_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mtl_runner.cli import cli\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['train', '--help'], ['validate', 'recipes/quickstart.yaml'], ['schema']):\n"
        "    out = r.invoke(cli, args)\n"
        "    assert out.exit_code == 0, (args, out.output)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_single_task_run_names_its_history_like_a_multi_task_one(runner, write_recipe, tmp_path):
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe(TINY_RECIPE.replace(
        "  flag: {type: binary, label: flag}\n  target: {type: regression, label: target}\n", ""))),
        "--results", str(results), "--set", "training.early_stopping.monitor=val_kind_accuracy"])
    assert outcome.exit_code == 0, outcome.output
    columns = set(pd.read_csv(only_run(results) / "history.csv").columns)
    assert {"loss", "val_loss", "kind_loss", "kind_accuracy", "val_kind_accuracy", "val_kind_macro_f1"} <= columns
    assert "accuracy" not in columns and "val_accuracy" not in columns
