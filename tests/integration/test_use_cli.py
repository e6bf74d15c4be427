"""`mtl evaluate`, `mtl predict`, `mtl export` on a tiny trained run, each in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE, make_table


def mtl(*args: str, cwd) -> subprocess.CompletedProcess:
    """Runs `mtl ARGS` in a new Python process (nothing loaded from the test's process)."""
    return subprocess.run([sys.executable, "-m", "mtl_runner", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from click.testing import CliRunner

    folder = tmp_path_factory.mktemp("use")
    make_table().to_csv(folder / "table.csv", index=False)
    (folder / "recipe.yaml").write_text(TINY_RECIPE)
    results = folder / "results"
    outcome = CliRunner().invoke(cli, ["train", str(folder / "recipe.yaml"), "--results",
                                       str(results), "--set", "training.epochs=2"])
    assert outcome.exit_code == 0, outcome.output
    [run] = [p for p in results.iterdir() if p.is_dir()]
    new = make_table(rows=24, seed=1)
    new.to_csv(folder / "new.csv", index=False)
    new.drop(columns=["kind", "flag", "target"]).to_csv(folder / "unlabelled.csv", index=False)
    return folder, run


def keras_outputs(run, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    from mtl_runner.inference import load_trained

    trained = load_trained(str(run), run.parent)
    return trained, trained.outputs(frame)


def test_evaluate_scores_new_data_and_saves_it_in_the_run(trained):
    folder, run = trained
    done = mtl("evaluate", run.name, "--data", "new.csv", "--results", "results",
               "-o", "eval.json", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and "rmse" in done.stdout
    saved = pd.read_csv(run / "evaluations" / "new.csv")
    assert list(saved.columns) == ["task", "metric", "split", "value", "n"]
    assert set(saved["task"]) == {"kind", "flag", "target"} and set(saved["split"]) == {"new"}
    assert saved.loc[saved.task == "flag", "n"].iloc[0] == 23   # row 5 has no flag: left out
    assert json.loads((folder / "eval.json").read_text())[0]["split"] == "new"
    assert json.loads((run / "run.json").read_text())["evaluations"][0]["rows"] == 24

    # the numbers, recomputed here from the model's outputs and the labels (not by `score`)
    from sklearn.metrics import roc_auc_score

    frame = pd.read_csv(folder / "new.csv")
    trained_run, outputs = keras_outputs(run, frame)
    value = saved.set_index(["task", "metric"])["value"]
    classes = np.array(trained_run.infos["kind"]["classes"])
    assert value["kind", "accuracy"] == pytest.approx(
        np.mean(classes[outputs["kind"].argmax(axis=1)] == frame["kind"].to_numpy()), abs=1e-6)
    info = trained_run.infos["target"]
    grams = outputs["target"][:, 0] * info["scale"][0] + info["mean"][0]
    error = grams - frame["target"].to_numpy()
    assert value["target", "rmse"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-4)
    assert value["target", "mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-4)
    labelled = frame["flag"].notna().to_numpy()
    assert value["flag", "auc"] == pytest.approx(
        roc_auc_score(frame["flag"][labelled] == 1, outputs["flag"][labelled, 0]), abs=1e-6)


def test_predict_writes_decoded_columns_in_original_units(trained):
    folder, run = trained
    done = mtl("predict", run.name, "--data", "unlabelled.csv", "--results", "results",
               "--probabilities", "all", "--keep", "colour", "-o", "predictions.parquet", cwd=folder)
    assert done.returncode == 0, done.stderr
    predictions = pd.read_parquet(folder / "predictions.parquet")
    assert list(predictions.columns) == [
        "colour", "kind", "kind_probability", "kind_p_a", "kind_p_b", "kind_p_c",
        "flag", "flag_probability", "flag_p_0", "flag_p_1", "target"]
    assert len(predictions) == 24
    assert set(predictions["kind"]) <= {"a", "b", "c"} and set(predictions["flag"]) <= {"0", "1"}
    probabilities = predictions[["kind_p_a", "kind_p_b", "kind_p_c"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(predictions["kind_probability"], probabilities.max(axis=1))

    trained_run, outputs = keras_outputs(run, pd.read_csv(folder / "unlabelled.csv"))
    info = trained_run.infos["target"]
    expected = outputs["target"][:, 0] * info["scale"][0] + info["mean"][0]
    assert np.allclose(predictions["target"], expected, rtol=1e-5)        # grams, not z-scores
    assert abs(predictions["target"].mean() - 100.0) < 15.0              # the labels are ~100
    assert np.allclose(predictions["flag_p_1"], outputs["flag"][:, 0], atol=1e-6)


def test_predict_needs_the_feature_columns(trained):
    folder, run = trained
    pd.read_csv(folder / "new.csv").drop(columns=["x1"]).to_csv(folder / "bad.csv", index=False)
    done = mtl("predict", run.name, "--data", "bad.csv", "--results", "results", cwd=folder)
    assert done.returncode == 2
    assert "lacks feature column(s) the model was trained on: x1" in done.stderr


def test_exported_savedmodel_gives_the_keras_models_predictions(trained):
    folder, run = trained
    done = mtl("export", run.name, "--results", "results", cwd=folder)
    assert done.returncode == 0, done.stderr
    exported = run / "export" / "savedmodel" / "1"
    assert (exported / "saved_model.pb").is_file()
    description = json.loads((exported / "assets.extra" / "mtl.json").read_text())
    assert set(description["outputs"]) == {"kind", "flag", "target"}
    again = mtl("export", run.name, "--results", "results", cwd=folder)
    assert again.returncode == 2 and "exists already" in again.stderr

    import tensorflow as tf

    frame = pd.read_csv(folder / "unlabelled.csv")
    trained_run, outputs = keras_outputs(run, frame)
    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    served = serve(**{name: tf.constant(array) for name, array in trained_run.inputs(frame).items()})
    assert set(served) == {"kind", "flag", "target"}                    # named outputs per task
    for task, value in outputs.items():
        assert np.allclose(served[task].numpy(), value, atol=1e-5), task

    keras_file = mtl("export", run.name, "--format", "keras", "-o", "copy.keras",
                     "--results", "results", cwd=folder)
    assert keras_file.returncode == 0, keras_file.stderr
    import keras

    copy = keras.saving.load_model(folder / "copy.keras")
    rows = tf.data.Dataset.from_tensor_slices(trained_run.inputs(frame)).batch(64)
    predicted = copy.predict(rows, verbose=0)
    for task, value in outputs.items():
        assert np.allclose(predicted[task], value, atol=1e-5), task     # the same model
    sidecar = json.loads((folder / "copy.mtl.json").read_text())
    assert sidecar == description                                        # the same description


def test_a_run_that_did_not_complete_is_refused(trained, tmp_path):
    folder, run = trained
    broken = tmp_path / "results" / run.name
    broken.mkdir(parents=True)
    info = json.loads((run / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    done = mtl("predict", str(broken), "--data", str(folder / "new.csv"), cwd=REPO)
    assert done.returncode == 1 and "is failed, not completed" in done.stderr
