"""From a table to what Keras trains on: splits, label encodings, features, tf.data pipelines."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.data.features import FeatureSpec, feature_arrays, fit_features, select_features
from mtl_runner.data.splits import split_indices
from mtl_runner.tasks import TASK_TYPES, EncodedLabels, TaskType
from mtl_runner.tasks.labels import class_names

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Prepared:
    """Everything derived from the data before the model is built.

    Attributes:
        tasks: task objects by name.
        infos: each task's label encoding (classes, regression mean and scale).
        spec: feature columns and train statistics (None for image input).
        x: model inputs per split.
        labels: encoded labels per split, then per task.
        sizes: rows per split.
    """

    tasks: dict[str, TaskType]
    infos: dict[str, dict[str, Any]]
    spec: FeatureSpec | None
    x: dict[str, dict[str, np.ndarray]]
    labels: dict[str, dict[str, EncodedLabels]]
    sizes: dict[str, int]
    skipped: list[str] = dataclasses.field(default_factory=list)

    def with_inputs(self, x: dict[str, dict[str, np.ndarray]]) -> "Prepared":
        """The same labels with other inputs (e.g. cached backbone features)."""
        return dataclasses.replace(self, x=x)


def stratify_column(recipe) -> str | None:
    """The column the split is stratified on: the recipe's choice, or the first
    classification or binary task's label."""
    choice = recipe.data.split.stratify
    if isinstance(choice, str):
        return choice
    if not choice:
        return None
    for task in recipe.tasks.values():
        if task.type in ("classification", "binary"):
            return task.label
    return None


def stratum(frame: pd.DataFrame, recipe) -> np.ndarray | None:
    """The labels to stratify the split on (see `stratify_column`)."""
    column = stratify_column(recipe)
    return class_names(frame[column]) if column is not None and column in frame.columns else None


def read_all_images(frame: pd.DataFrame, image) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Reads the image column; unreadable images stop the run or are skipped (`on_error`)."""
    from mtl_runner.data.images import load_images
    from mtl_runner.errors import RunError

    images, failures = load_images(frame[image.column], image.shape())
    if failures and image.on_error == "error":
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise RunError(f"cannot read image {failures[0][1]}{more}. Fix or remove the file, or set "
                       f"data.image.on_error: skip")
    if failures:
        keep = np.setdiff1d(np.arange(len(frame)), [row for row, _ in failures])
        return frame.iloc[keep].reset_index(drop=True), images[keep], [f for _, f in failures]
    return frame, images, []


def prepare(frame: pd.DataFrame, recipe) -> Prepared:
    """Splits the table, fits encodings and feature statistics on train, encodes every split."""
    skipped: list[str] = []
    images = None
    if recipe.data.image is not None:
        frame, images, skipped = read_all_images(frame, recipe.data.image)
    split = recipe.data.split
    indices = split_indices(len(frame), split.validation, split.test, recipe.split_seed(),
                            stratum(frame, recipe))
    parts = {name: frame.iloc[rows].reset_index(drop=True) for name, rows in indices.items()}
    tasks = {name: TASK_TYPES.get(config.type)(name, config) for name, config in recipe.tasks.items()}
    infos = {name: task.fit_encoding(frame, parts["train"]) for name, task in tasks.items()}
    if images is not None:
        spec = None
        x = {name: {"image": images[rows]} for name, rows in indices.items()}
    else:
        label_columns = [c for task in tasks.values() for c in task.label_columns()]
        numeric, categorical = select_features(frame, recipe.data, label_columns)
        spec = fit_features(parts["train"], frame, numeric, categorical)
        x = {name: feature_arrays(part, spec) for name, part in parts.items()}
    labels = {name: {t: task.encode(part, infos[t]) for t, task in tasks.items()}
              for name, part in parts.items()}
    return Prepared(tasks, infos, spec, x, labels, {n: len(p) for n, p in parts.items()}, skipped)


def make_dataset(prepared: Prepared, split: str, batch_size: int, seed: int, shuffle: bool):
    """A tf.data pipeline of (inputs, targets, masks) for one split.

    The masks are Keras sample weights per output: an example whose label is missing for a
    task contributes to neither that task's loss nor its metrics.
    """
    import tensorflow as tf

    labels = prepared.labels[split]
    targets = {t: encoded.y for t, encoded in labels.items()}
    masks = {t: encoded.mask for t, encoded in labels.items()}
    inputs = prepared.x[split]
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, masks))
    if any(array.dtype == np.uint8 for array in inputs.values()):
        # images stay uint8 in memory (4× smaller) and become float32 per batch element
        dataset = dataset.map(lambda x, y, w: ({k: tf.cast(v, "float32") if v.dtype == tf.uint8
                                                else v for k, v in x.items()}, y, w))
    dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(prepared.sizes[split], seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
