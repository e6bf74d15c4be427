"""Experiment tracking while training: TensorBoard logs in the run folder, MLflow optionally.

`extra_callbacks(run, recipe, stage_name)` is what the training loop calls once per stage.
What is tracked comes from, first match wins:

1. the recipe's `tracking:` block, when the schema has one (`{tensorboard: true, mlflow: false,
   histograms: false}`);
2. the module setting `TRACKING` (a command-line flag may set it), or the environment variable
   `MTL_TRACKING`: a comma list of `tensorboard`, `mlflow`, `histograms`, or `none`;
3. the default: TensorBoard only.

TensorBoard logs go to `<run>/tb/train` and `<run>/tb/validation`, one scalar per task and
metric under the task's name (`species/accuracy`, `species/loss`), the total loss
(`total/loss`), per-task loss weights (`weights/species`) and the learning rate
(`optimizer/learning_rate`). `tensorboard --logdir results/` shows every run at once.

MLflow (`pip install 'mtl-runner[mlflow]'`) logs to `MLFLOW_TRACKING_URI`, else to a local
`mlruns/` (an SQLite database, mlruns/mlflow.db, with artifacts in mlruns/artifacts): the
flattened resolved recipe as params, every epoch's metrics, and — when the run ends — the final
metrics (`<split>_<task>_<metric>`), metrics.csv, history.csv, recipe.yaml, run.json and
model.keras as artifacts, and the run's status.
"""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path
from typing import Any

import keras

from mtl_runner.errors import UsageError

TRACKING_ENV = "MTL_TRACKING"
KINDS = ("tensorboard", "mlflow", "histograms")
TRACKING: str | None = None  # e.g. "tensorboard,mlflow"; set by a --tracking flag

MLFLOW_INSTALL_HINT = ("MLflow tracking needs the mlflow extra: pip install 'mtl-runner[mlflow]' "
                       "(or pip install mlflow)")


def tracking_kinds(recipe: Any = None) -> set[str]:
    """Which trackers a run uses (see the module docstring for the order of precedence).

    Raises:
        UsageError: MTL_TRACKING names an unknown tracker.
    """
    block = getattr(recipe, "tracking", None)
    if block is not None:
        read = block.model_dump() if hasattr(block, "model_dump") else dict(block)
        return {kind for kind in KINDS if read.get(kind)}
    text = TRACKING if TRACKING is not None else os.environ.get(TRACKING_ENV)
    if text is None:
        return {"tensorboard"}
    kinds = {k.strip().lower() for k in text.split(",") if k.strip()}
    unknown = kinds - set(KINDS) - {"none"}
    if unknown:
        raise UsageError(f"{TRACKING_ENV} (or --tracking) takes a comma list of "
                         f"{', '.join(KINDS)} or none. Received: {text!r}")
    return set() if "none" in kinds else kinds


def extra_callbacks(run, recipe, stage_name: str) -> list[keras.callbacks.Callback]:
    """The tracking callbacks of one training stage.

    Args:
        run: the `RunDirectory` being written.
        recipe: the validated recipe.
        stage_name: the stage being fitted ("train" for a single-stage run).

    Raises:
        UsageError: MLflow tracking is asked for but mlflow is not installed.
    """
    kinds = tracking_kinds(recipe)
    tasks = list(recipe.tasks)
    callbacks: list[keras.callbacks.Callback] = []
    if "tensorboard" in kinds or "histograms" in kinds:
        callbacks.append(TensorBoardLogger(run.file("tb"), tasks, histograms="histograms" in kinds))
    if "mlflow" in kinds:
        callbacks.append(MlflowLogger(run, recipe, stage_name))
    return callbacks


def scalar_tag(key: str, tasks: list[str]) -> str:
    """The TensorBoard tag of a log key (without `val_`): `species_accuracy` → `species/accuracy`."""
    if key == "loss":
        return "total/loss"
    if key == "learning_rate":
        return "optimizer/learning_rate"
    if key.startswith("weight_"):
        return f"weights/{key[len('weight_'):]}"
    for task in sorted(tasks, key=len, reverse=True):  # "sex" must not take "sex_2_accuracy"
        if key.startswith(task + "_"):
            return f"{task}/{key[len(task) + 1:]}"
    return f"other/{key}"


def scalar_metadata():
    """The metadata TensorBoard's scalar plugin reads (what `tf.summary.scalar` writes).

    Written directly so that logging needs TensorFlow only; `tf.summary.scalar` itself refuses
    to run unless the `tensorboard` package is installed.
    """
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return metadata


def tensorboard_installed() -> bool:
    """Histograms need the `tensorboard` package (its bucketing); say so once when it is absent."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        if not getattr(tensorboard_installed, "warned", False):
            tensorboard_installed.warned = True  # type: ignore[attr-defined]
            print("Warning: weight histograms need the tensorboard package (pip install "
                  "tensorboard); writing scalars only")
        return False
    return True


class TensorBoardLogger(keras.callbacks.Callback):
    """Writes every epoch's logs as TensorBoard scalars grouped by task (see the module doc).

    Train values go to `<logdir>/train`, validation values to `<logdir>/validation`, under the
    same tag, so TensorBoard draws them on one chart. The step is the epoch (1-based, counted
    across stages).

    Args:
        logdir: the run's `tb/` folder.
        tasks: task names, to group `<task>_<metric>` keys.
        histograms: also write a histogram of every trainable weight each epoch.
    """

    def __init__(self, logdir: str | Path, tasks: list[str], histograms: bool = False):
        super().__init__()
        self.logdir = Path(logdir)
        self.tasks = tasks
        self.histograms = histograms
        self.writers: dict[str, Any] = {}

    def _writer(self, split: str):
        import tensorflow as tf

        if split not in self.writers:
            self.writers[split] = tf.summary.create_file_writer(str(self.logdir / split))
        return self.writers[split]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf

        logs = dict(logs or {})
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            try:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(
                    self.model.optimizer.learning_rate))
            except (TypeError, ValueError, AttributeError):
                pass
        step = epoch + 1
        for key, value in logs.items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            with self._writer(split).as_default():
                tf.summary.write(scalar_tag(name, self.tasks), tf.constant(number, tf.float32),
                                 step=step, metadata=scalar_metadata())
        if self.histograms and tensorboard_installed():
            with self._writer("train").as_default():
                for weight in self.model.trainable_weights:
                    tf.summary.histogram(weight.path, keras.ops.convert_to_numpy(weight), step=step)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers = {}


# -- MLflow ---------------------------------------------------------------------------------

_SESSIONS: dict[Path, "MlflowSession"] = {}


def import_mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UsageError(MLFLOW_INSTALL_HINT) from None
    return MlflowClient


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else an SQLite store in ./mlruns (no server needed)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = Path("mlruns").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


class MlflowSession:
    """One MLflow run for one mtl run (across its stages); ended by `finish_tracking`."""

    def __init__(self, run, recipe):
        from mlflow.entities import Param

        from mtl_runner.results.reader import flatten

        client_class = import_mlflow()
        self.run = run
        self.uri = default_tracking_uri()
        self.client = client_class(tracking_uri=self.uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or recipe.name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        elif self.uri.startswith("sqlite:///") and "MLFLOW_TRACKING_URI" not in os.environ:
            artifacts = Path(self.uri[len("sqlite:///"):]).parent / "artifacts"
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts.as_uri())
        else:
            experiment_id = self.client.create_experiment(name)
        self.mlflow_run_id = self.client.create_run(
            experiment_id, run_name=run.run_id,
            tags={"mtl.run_id": run.run_id, "mtl.run_dir": str(Path(run.path).resolve()),
                  "mtl.recipe_name": recipe.name}).info.run_id
        params = [Param(key[:250], _param_value(value))
                  for key, value in flatten(recipe.model_dump(mode="json")).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.mlflow_run_id, params=params[start:start + 100])
        run.update(mlflow={"tracking_uri": self.uri, "run_id": self.mlflow_run_id,
                           "experiment_id": experiment_id})

    def log_epoch(self, step: int, logs: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for key, value in logs.items():
            try:
                metrics.append(Metric(key, float(value), now, step))
            except (TypeError, ValueError):
                continue
        if metrics:
            self.client.log_batch(self.mlflow_run_id, metrics=metrics)

    def finish(self) -> None:
        """Logs the final metrics and the run's files, and ends the MLflow run with the
        mtl run's status (completed → FINISHED, interrupted → KILLED, else FAILED)."""
        import csv

        from mlflow.entities import Metric

        info = self.run.read_json()
        metrics_file = self.run.file("metrics.csv")
        if metrics_file.is_file():
            now = int(time.time() * 1000)
            with open(metrics_file, newline="") as handle:
                rows = [Metric(f"{r['split']}_{r['task']}_{r['metric']}", float(r["value"]), now, 0)
                        for r in csv.DictReader(handle) if r.get("value")]
            for start in range(0, len(rows), 500):
                self.client.log_batch(self.mlflow_run_id, metrics=rows[start:start + 500])
        for name in ("metrics.csv", "history.csv", "recipe.yaml", "run.json"):
            if self.run.file(name).is_file():
                self.client.log_artifact(self.mlflow_run_id, str(self.run.file(name)))
        if self.run.file("model.keras").is_file():
            self.client.log_artifact(self.mlflow_run_id, str(self.run.file("model.keras")), "model")
        status = {"completed": "FINISHED", "interrupted": "KILLED"}.get(info.get("status"), "FAILED")
        self.client.set_terminated(self.mlflow_run_id, status)


def _param_value(value: Any) -> str:
    from mtl_runner.results.reader import format_value

    return format_value(value)[:6000]  # MLflow's limit on a param value


def finish_tracking(run) -> None:
    """Ends the MLflow run of an mtl run, if there is one (safe to call more than once).

    Called by the training code once the run directory is final; registered with `atexit` as
    well, so a run that ends any other way is still closed with its status.
    """
    session = _SESSIONS.pop(Path(run.path).resolve(), None)
    if session is not None:
        session.finish()


def _finish_all() -> None:
    for path in list(_SESSIONS):
        session = _SESSIONS.get(path)
        try:
            finish_tracking(session.run)
        except Exception as error:  # noqa: BLE001 - at exit, report and go on
            print(f"Warning: MLflow: could not close the run of {path}: {error}")


atexit.register(_finish_all)


class MlflowLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics to the run's MLflow run (started with the first stage)."""

    def __init__(self, run, recipe, stage_name: str):
        super().__init__()
        key = Path(run.path).resolve()
        if key not in _SESSIONS:
            _SESSIONS[key] = MlflowSession(run, recipe)
        self.session = _SESSIONS[key]
        self.stage_name = stage_name

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.session.log_epoch(epoch + 1, dict(logs or {}))
