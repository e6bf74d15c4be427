"""Putting a trained run to work: load it from its folder, encode new data, decode predictions.

Everything comes from the run directory — `recipe.yaml` (the resolved recipe: task types and
label columns), `run.json` (the label encodings and feature statistics fitted at training time)
and `model.keras` — so the recipe file the run was trained from is never needed. New data is
encoded with the run's stored encodings, never refitted.

Example:
    >>> trained = load_trained("20261201-135027-quickstart-4d18", "results")
    >>> frame = read_table("new_penguins.csv", trained)
    >>> predictions = trained.predict(frame)            # species, species_probability, ...
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from mtl_runner.data.features import FeatureSpec, feature_arrays, input_name
from mtl_runner.errors import RunError, UsageError
from mtl_runner.recipe.checks import MAX_FEATURE_MAGNITUDE, MAX_LABEL_MAGNITUDE
from mtl_runner.results import RunDirectory
from mtl_runner.results.reader import resolve_run
from mtl_runner.tasks import TASK_TYPES, EncodedLabels, TaskType
from mtl_runner.tasks.scoring import metrics_frame, score_outputs

SOURCES_BY_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
TRAINING_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class TrainedRun:
    """A completed run, ready to score and predict.

    Attributes:
        run: the run directory.
        info: run.json.
        recipe: the resolved `Recipe` (from the run's recipe.yaml).
        tasks: task objects by name, in recipe order.
        infos: each task's stored label encoding.
        spec: the stored feature columns and statistics (None for image input).
    """

    run: RunDirectory
    info: dict[str, Any]
    recipe: Any
    tasks: dict[str, TaskType]
    infos: dict[str, dict[str, Any]]
    spec: FeatureSpec | None

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        image = (self.info.get("features") or {}).get("image")
        return tuple(image) if image else None

    @functools.cached_property
    def model(self):
        """The trained Keras model (loaded on first use; imports TensorFlow)."""
        return load_model(self.run.file("model.keras"))

    # -- inputs and labels -----------------------------------------------------------------
    def inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs for the rows of `frame`, encoded with the run's feature statistics.

        Raises:
            UsageError: a feature column the model needs is missing, or its cells are not of
                the kind it had in training (see `read_table`).
        """
        if self.spec is None:
            return {"image": self._images(frame)}
        from mtl_runner.data.kinds import derived_columns, settle_like

        needed = [*self.spec.numeric, *self.spec.categorical]
        raw = {name: column for column, choice in (self.recipe.data.columns or {}).items()
               for name in derived_columns(column, choice)}  # date parts come from one column
        needed = list(dict.fromkeys(raw.get(c, c) for c in needed))
        absent = [c for c in needed if c not in frame.columns
                  and not any(raw.get(n) == c and n in frame.columns for n in raw)]
        if absent:
            raise UsageError(f"the data lacks feature column(s) the model was trained on: "
                             f"{', '.join(absent)}. Needed: {', '.join(needed)}")
        settled = settle_like(frame, self.recipe.data, self.spec)  # read_table warned already
        if settled.problems:
            raise UsageError(problem_lines(settled.problems))
        out_of_range(settled.frame, self.spec.numeric, MAX_FEATURE_MAGNITUDE, "feature column")
        return feature_arrays(settled.frame, self.spec)

    def _images(self, frame: pd.DataFrame) -> np.ndarray:
        from mtl_runner.data.images import load_images
        from mtl_runner.errors import column_list

        column = self.recipe.data.image.column if self.recipe.data.image else "image"
        if column not in frame.columns:
            raise UsageError(f"the data has no image column '{column}'. "
                             f"Columns: {column_list(frame.columns)}")
        images, failures = load_images(frame[column], self.image_shape)
        if failures:
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise RunError(f"cannot read image {failures[0][1]}{more}")
        return images.astype("float32")

    def labelled_tasks(self, frame: pd.DataFrame) -> list[str]:
        """The tasks whose label columns are all in `frame`."""
        return [name for name, task in self.tasks.items()
                if all(c in frame.columns for c in task.label_columns())]

    def labels(self, frame: pd.DataFrame, warn: Callable[[str], None] | None = None
               ) -> dict[str, EncodedLabels]:
        """Encoded labels of every task whose label columns `frame` has (stored encodings).

        Raises:
            UsageError: labels the run cannot encode (a class it never saw, a word in a
                regression column), unless the run's recipe reads them as missing
                (`data.bad_cells: missing`): then those rows are left out, and `warn` says how many.
        """
        from mtl_runner.data.kinds import shown

        warn = warn or _warn
        encoded, problems = {}, []
        for name in self.labelled_tasks(frame):
            if self.tasks[name].numeric_labels:  # as training refuses them
                out_of_range(frame, self.tasks[name].label_columns(), MAX_LABEL_MAGNITUDE,
                             f"task '{name}': regression label column")
            labels = self.tasks[name].encode(frame, self.infos[name])
            rows, values, what = self.tasks[name].unknown_labels(frame, self.infos[name])
            if rows.any():
                count = f"{int(rows.sum())} of {len(frame)} rows"
                if self.recipe.data.bad_cells == "missing":
                    labels.mask = np.where(rows, 0.0, labels.mask).astype("float32")
                    warn(f"task '{name}': {count} left out: labels {what} ({shown(values)})")
                else:
                    problems.append(f"task '{name}': {count} have labels that are {what}. "
                                    f"Received: {shown(values)}. Remove or fix those rows; a "
                                    "row the run cannot score is not dropped silently")
            encoded[name] = labels
        if problems:
            raise UsageError("\n".join(problems))
        return encoded

    def unscored(self, frame: pd.DataFrame, metrics: pd.DataFrame) -> dict[str, str]:
        """Why each task without metrics was not scored."""
        labelled = set(self.labelled_tasks(frame))
        return {name: ("the data holds its label column(s) but no label in them" if name in labelled
                       else f"no label column {', '.join(task.label_columns())} in the data")
                for name, task in self.tasks.items() if name not in set(metrics["task"])}

    # -- using the model -------------------------------------------------------------------
    def outputs(self, frame: pd.DataFrame, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Raw model outputs by task (probabilities; standardized regression values)."""
        from mtl_runner.models.predict import predict

        return predict(self.model, self.inputs(frame), batch_size)

    def score(self, frame: pd.DataFrame, split: str, batch_size: int = 256,
              warn: Callable[[str], None] | None = None) -> pd.DataFrame:
        """Metrics of every labelled task on `frame`, as metrics.csv rows (split = `split`).

        Raises:
            UsageError: the data holds no label column of any task.
        """
        labels = self.labels(frame, warn)
        if not labels:
            wanted = "; ".join(f"{n}: {', '.join(t.label_columns())}" for n, t in self.tasks.items())
            raise UsageError(f"the data has no label column of any task, so there is nothing "
                             f"to evaluate (label columns: {wanted}). Use `mtl predict` instead.")
        outputs = self.outputs(frame, batch_size)
        return metrics_frame(score_outputs(self.tasks, labels, outputs, split))

    def predict(self, frame: pd.DataFrame, probabilities: str = "top",
                batch_size: int = 256) -> pd.DataFrame:
        """Decoded predictions, one row per row of `frame`.

        Args:
            frame: the new rows (feature columns; labels, if present, are ignored).
            probabilities: "top" — the predicted class and its probability; "all" — also one
                probability column per class.
            batch_size: rows per prediction batch.

        Returns:
            Per task: classification and binary `<task>` (class) and `<task>_probability`
            (of that class), plus `<task>_p_<class>` with "all"; multilabel `<task>`
            (predicted labels joined by "|") and `<task>_p_<label>`; regression `<task>` (one
            column) or `<task>_<column>`, in the label's original units.
        """
        outputs = self.outputs(frame, batch_size)
        columns: dict[str, np.ndarray] = {}
        for name, task in self.tasks.items():
            decoded = task.decode(outputs[name], self.infos[name], probabilities)
            taken = [c for c in decoded if c in columns]
            if taken:  # never let one task's column replace another's
                raise RunError(f"prediction column(s) {', '.join(taken)} of task '{name}' are "
                               "also another task's; rename a task (a run trained before task "
                               "names were checked for this)")
            columns.update(decoded)
        return pd.DataFrame(columns, index=frame.index)


def out_of_range(frame: pd.DataFrame, columns, limit: float, what: str) -> None:
    """Refuses Inf, and numbers beyond ±limit, in numeric columns (training refuses them too:
    float32 arithmetic would overflow, and the metrics would be nonsense).

    Raises:
        UsageError: names the column and how many cells.
    """
    for column in columns:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > limit)
        if bad.any():
            raise UsageError(f"{what} '{column}': {int(bad.sum())} of {len(values)} cells are "
                             f"infinite or beyond ±{limit:g}, which training refuses too. "
                             "Fix or remove those rows (an empty cell counts as missing)")


def _warn(message: str) -> None:
    import click

    click.echo(f"Warning: {message}", err=True)


def load_model(path: str | Path):
    """Loads a run's model.keras safely, without compiling (custom layers registered first)."""
    from mtl_runner.training.device import import_tensorflow

    import_tensorflow()
    import keras

    from mtl_runner.models import layers, metrics, mixing  # noqa: F401  (register "mtl>..." objects)
    from mtl_runner.models.safety import code_layers, unsafe_model_message

    unsafe = code_layers(path)
    if unsafe:
        raise RunError(unsafe_model_message(path, unsafe))
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - zipfile, h5py and Keras raise many kinds
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise RunError(f"cannot load the model {path}: {type(error).__name__}"
                       f"{': ' + first if first else ''}") from None


def load_trained(ref: str, results: str | Path) -> TrainedRun:
    """Opens a completed run (id, unique id prefix or path) for evaluation and prediction.

    Raises:
        UsageError: no such run.
        RunError: the run did not complete, or its files are missing or unreadable.
    """
    from mtl_runner.recipe.schema import Recipe

    run = RunDirectory(resolve_run(ref, results))
    info = run.read_json()
    status = info.get("status")
    if status != "completed":
        raise RunError(f"run {run.run_id} is {status or 'unreadable'}, not completed; only a "
                       f"completed run has a final model to use")
    for name in ("recipe.yaml", "model.keras"):
        if not run.file(name).is_file():
            raise RunError(f"run {run.run_id} has no {name}")
    try:
        recipe = Recipe.model_validate(yaml.safe_load(run.file("recipe.yaml").read_text()))
    except Exception as error:  # noqa: BLE001 - a hand-edited or foreign recipe.yaml
        raise RunError(f"cannot read {run.file('recipe.yaml')}: {error}") from None
    infos = info.get("label_encoding") or {}
    features = info.get("features") or {}
    missing = [t for t in recipe.tasks if t not in infos]
    if missing or not features:
        raise RunError(f"run.json of {run.run_id} lacks the label encodings or feature "
                       f"statistics (a run from an older mtl?)")
    tasks = {name: TASK_TYPES.get(config.type)(name, config) for name, config in recipe.tasks.items()}
    spec = None if "image" in features else FeatureSpec(**features)
    return TrainedRun(run, info, recipe, tasks, infos, spec)


def read_table(path: str | Path, trained: TrainedRun,
               warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Reads new data: a .csv, .parquet or .npz file, or a folder of class subfolders of images.

    The run's data settings that concern reading apply (the image column, npz image arrays,
    csv options, `columns` and `bad_cells`), and every feature column must have the kind it had
    in training (`mtl_runner.data.kinds.settle_like`).

    Raises:
        UsageError: the file is missing or of an unknown kind, or a feature column's cells are
            not of its trained kind (a word in a numeric column).
    """
    from mtl_runner.data.kinds import settle_like
    from mtl_runner.data.sources import SourceError, read_source

    path = Path(path)
    if path.is_dir():
        source = "image_dir"
    else:
        source = SOURCES_BY_SUFFIX.get(path.suffix.lower())
        if not path.exists():
            raise UsageError(f"--data: no such file or folder: {path}")
        if source is None:
            raise UsageError(f"--data must be a .csv, .parquet or .npz file, or a folder of "
                             f"images. Received: {path}")
    data = trained.recipe.data.model_copy(update={"source": source, "path": str(path), "name": None})
    if source == "image_dir" and data.image is None:
        raise UsageError(f"{path} is a folder, but run {trained.run.run_id} takes table features")
    if source != "csv":
        data = data.model_copy(update={"csv": None})
    try:
        frame = read_source(data)
    except SourceError as error:
        hint = f" {error.hint}" if getattr(error, "hint", "") else ""
        if error.key[1:2] == ("csv",):
            sep = data.csv.sep if data.csv else ","
            hint = (f" Save it separated by {sep!r}, as the data run {trained.run.run_id} "
                    "trained on.")
        raise UsageError(error.format_message() + hint) from None
    if trained.spec is None:
        return frame
    settled = settle_like(frame, data, trained.spec)
    if settled.problems:
        raise UsageError(problem_lines(settled.problems, f"{path}: "))
    for note in settled.notes:
        (warn or _warn)(f"{path}: {note}")
    return frame  # as read: --keep copies the columns as written; inputs() converts them


def problem_lines(problems, prefix: str = "") -> str:
    """`KindProblem`s as `Error:` lines: message, what was received, what to do."""
    return "\n".join(f"{prefix}{p.message}" + (f". Received: {p.received}" if p.received else "")
                     + (f". {p.hint}" if p.hint else "") for p in problems)


def serving_info(trained: TrainedRun) -> dict[str, Any]:
    """How to feed an exported model and read its outputs (written as mtl.json beside it)."""
    if trained.spec is None:
        inputs = [{"name": "image", "shape": [None, *trained.image_shape], "dtype": "float32",
                   "note": "pixel values 0-255"}]
    else:
        inputs = [{"name": input_name(c), "column": c, "shape": [None, 1], "dtype": "float32"}
                  for c in trained.spec.numeric]
        inputs += [{"name": input_name(c), "column": c, "shape": [None, 1], "dtype": "string"}
                   for c in trained.spec.categorical]
    outputs = {name: task.serving_info(trained.infos[name]) for name, task in trained.tasks.items()}
    return {"run": trained.run.run_id, "signature": "serving_default", "inputs": inputs,
            "outputs": outputs}


def export_paths(target: str | Path, fmt: str) -> list[Path]:
    """What an export writes: the SavedModel folder, or the .keras file and its NAME.mtl.json."""
    target = Path(target)
    return [target] if fmt == "savedmodel" else [target, target.with_name(target.stem + ".mtl.json")]


def export_model(trained: TrainedRun, target: str | Path, fmt: str,
                 overwrite: bool = False) -> Path:
    """Writes the run's model as a SavedModel folder or a .keras file, with mtl.json.

    Args:
        trained: the run.
        target: the folder (savedmodel) or file (keras) to create; it must not exist (nor,
            for keras, its NAME.mtl.json) unless `overwrite`.
        fmt: "savedmodel" or "keras".
        overwrite: replace what an earlier export wrote there.

    Returns:
        The path written.

    Raises:
        UsageError: the target exists, or a .keras target lacks the suffix.
    """
    import json
    import os
    import secrets
    import shutil

    from mtl_runner.results.run_dir import atomic_write

    target = Path(target)
    existing = [p for p in export_paths(target, fmt) if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        raise UsageError(f"{existing[0]} exists already; remove it, give another --output, or "
                         f"add --overwrite to replace it")
    if fmt == "keras" and target.suffix != ".keras":
        raise UsageError(f"a Keras export is a file ending in .keras. Received: {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    description = json.dumps(serving_info(trained), indent=2) + "\n"
    if fmt == "keras":
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(2)}.tmp")
        shutil.copyfile(trained.run.file("model.keras"), temporary)
        os.replace(temporary, target)
        atomic_write(target.with_name(target.stem + ".mtl.json"), description)
        return target
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(2)}.tmp")
    old = None
    try:
        trained.model.export(str(temporary), format="tf_saved_model", verbose=False)
        (temporary / "assets.extra").mkdir(exist_ok=True)
        atomic_write(temporary / "assets.extra" / "mtl.json", description)
        if target.exists():  # --overwrite: the old export moves aside until the new one is in
            old = target.with_name(f".{target.name}.{secrets.token_hex(2)}.old")
            os.replace(target, old)
        try:
            os.replace(temporary, target)  # the folder appears whole, or not at all
        except OSError:
            if old is not None:
                os.replace(old, target)
                old = None
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return target
