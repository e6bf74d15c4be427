"""TensorBoard logs in the run folder; MLflow runs read back with MLflow's own client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_runner.errors import UsageError
from mtl_runner.training import tracking
from tests.conftest import TINY_RECIPE, make_table


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag → [(step, value)] from the event files in `folder`."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    found: dict[str, list[tuple[int, float]]] = {}
    for file in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(file)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                number = float(tf.make_ndarray(value.tensor))
                found.setdefault(value.tag, []).append((event.step, number))
    return found


def test_scalar_tags_group_by_task():
    tasks = ["sex", "sex_2", "species"]
    assert tracking.scalar_tag("species_accuracy", tasks) == "species/accuracy"
    assert tracking.scalar_tag("sex_2_auc", tasks) == "sex_2/auc"
    assert tracking.scalar_tag("sex_loss", tasks) == "sex/loss"
    assert tracking.scalar_tag("weight_sex", tasks) == "weights/sex"
    assert tracking.scalar_tag("loss", tasks) == "total/loss"
    assert tracking.scalar_tag("learning_rate", tasks) == "optimizer/learning_rate"


def test_tracking_kinds_from_the_environment(monkeypatch):
    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)
    assert tracking.tracking_kinds() == {"tensorboard"}
    monkeypatch.setenv(tracking.TRACKING_ENV, "tensorboard, mlflow")
    assert tracking.tracking_kinds() == {"tensorboard", "mlflow"}
    monkeypatch.setenv(tracking.TRACKING_ENV, "none")
    assert tracking.tracking_kinds() == set()
    monkeypatch.setenv(tracking.TRACKING_ENV, "mlflw")
    with pytest.raises(UsageError, match="Received: 'mlflw'"):
        tracking.tracking_kinds()


def test_logger_writes_train_and_validation_scalars_per_task(tmp_path):
    logger = tracking.TensorBoardLogger(tmp_path / "tb", ["species", "sex"])
    for epoch, loss in enumerate([1.0, 0.5]):
        logger.on_epoch_end(epoch, {"loss": loss, "val_loss": loss + 0.1, "species_accuracy": 0.5,
                                    "val_species_accuracy": 0.25, "weight_sex": 2.0,
                                    "learning_rate": 1e-3})
    logger.on_train_end()
    train, validation = scalars(tmp_path / "tb" / "train"), scalars(tmp_path / "tb" / "validation")
    assert train["total/loss"] == [(1, 1.0), (2, 0.5)]
    assert train["species/accuracy"] == [(1, 0.5), (2, 0.5)]
    assert train["weights/sex"][0] == (1, 2.0)
    assert train["optimizer/learning_rate"][0] == (1, pytest.approx(1e-3))
    assert validation["total/loss"] == [(1, pytest.approx(1.1)), (2, pytest.approx(0.6))]
    assert validation["species/accuracy"] == [(1, 0.25), (2, 0.25)]


def test_a_training_run_writes_tensorboard_logs(runner, write_recipe, tmp_path, monkeypatch):
    from mtl_runner.cli import cli

    monkeypatch.delenv(tracking.TRACKING_ENV, raising=False)
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)])
    assert outcome.exit_code == 0, outcome.output
    [run] = [p for p in results.iterdir() if p.is_dir()]
    train, validation = scalars(run / "tb" / "train"), scalars(run / "tb" / "validation")
    for task, metric in [("kind", "accuracy"), ("flag", "auc"), ("target", "mae"),
                         ("target", "loss")]:
        assert [step for step, _ in train[f"{task}/{metric}"]] == [1, 2]
        assert len(validation[f"{task}/{metric}"]) == 2
    assert train["optimizer/learning_rate"][0][1] == pytest.approx(1e-3)
    history = (run / "history.csv").read_text().splitlines()
    last_loss = float(history[-1].split(",")[history[0].split(",").index("loss")])
    assert train["total/loss"][-1][1] == pytest.approx(last_loss, rel=1e-5)


def require_mlflow() -> None:
    """Skips without mlflow, except under `make test` or CI, which install it: there it fails."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        if os.environ.get("CI") or os.environ.get("MTL_TEST_MLFLOW") == "required":
            pytest.fail("mlflow is not installed, and CI / `make test` must run the MLflow test: "
                        "pip install -e '.[test,mlflow]' (what `make install` does)")
        pytest.skip("mlflow is not installed (pip install -e '.[mlflow]')")


def test_mlflow_logs_params_epochs_final_metrics_and_model(tmp_path):
    require_mlflow()
    from mlflow.tracking import MlflowClient

    make_table().to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(TINY_RECIPE)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment[tracking.TRACKING_ENV] = "tensorboard,mlflow"
    done = subprocess.run([sys.executable, "-m", "mtl_runner", "train", "recipe.yaml",
                           "--results", "results"], cwd=tmp_path, env=environment, text=True,
                          capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr
    [run] = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    recorded = json.loads((run / "run.json").read_text())["mlflow"]
    assert recorded["tracking_uri"] == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"

    client = MlflowClient(tracking_uri=recorded["tracking_uri"])
    [found] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert found.info.run_id == recorded["run_id"] and found.info.status == "FINISHED"
    assert found.info.run_name == run.name
    assert found.data.params["weighting.name"] == "static"
    assert found.data.params["model.trunk.units"] == "[8]"
    assert [m.step for m in client.get_metric_history(found.info.run_id, "val_loss")] == [1, 2]
    final = {line.split(",")[0] + line.split(",")[1] + line.split(",")[2]: float(line.split(",")[3])
             for line in (run / "metrics.csv").read_text().splitlines()[1:]}
    assert found.data.metrics["test_kind_accuracy"] == pytest.approx(final["kindaccuracytest"])
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.csv", "history.csv", "recipe.yaml", "run.json", "model"} <= artifacts
    assert [a.path for a in client.list_artifacts(found.info.run_id, "model")] == ["model/model.keras"]


def test_mlflow_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    with pytest.raises(UsageError, match=r"pip install 'mtl-runner\[mlflow\]'"):
        tracking.import_mlflow()
