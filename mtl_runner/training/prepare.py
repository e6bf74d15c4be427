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
        spec: feature columns and train statistics.
        x: model inputs per split.
        labels: encoded labels per split, then per task.
        sizes: rows per split.
    """

    tasks: dict[str, TaskType]
    infos: dict[str, dict[str, Any]]
    spec: FeatureSpec
    x: dict[str, dict[str, np.ndarray]]
    labels: dict[str, dict[str, EncodedLabels]]
    sizes: dict[str, int]


def stratum(frame: pd.DataFrame, recipe) -> np.ndarray | None:
    """The labels to stratify the split on: the first classification or binary task's."""
    if not recipe.data.split.stratify:
        return None
    for task in recipe.tasks.values():
        if task.type in ("classification", "binary"):
            return class_names(frame[task.label])
    return None


def prepare(frame: pd.DataFrame, recipe) -> Prepared:
    """Splits the table, fits encodings and feature statistics on train, encodes every split."""
    split = recipe.data.split
    indices = split_indices(len(frame), split.validation, split.test, recipe.split_seed(),
                            stratum(frame, recipe))
    parts = {name: frame.iloc[rows].reset_index(drop=True) for name, rows in indices.items()}
    tasks = {name: TASK_TYPES.get(config.type)(name, config) for name, config in recipe.tasks.items()}
    infos = {name: task.fit_encoding(frame, parts["train"]) for name, task in tasks.items()}
    label_columns = [c for task in tasks.values() for c in task.label_columns()]
    numeric, categorical = select_features(frame, recipe.data, label_columns)
    spec = fit_features(parts["train"], frame, numeric, categorical)
    x = {name: feature_arrays(part, spec) for name, part in parts.items()}
    labels = {name: {t: task.encode(part, infos[t]) for t, task in tasks.items()}
              for name, part in parts.items()}
    return Prepared(tasks, infos, spec, x, labels, {n: len(p) for n, p in parts.items()})


def make_dataset(prepared: Prepared, split: str, batch_size: int, seed: int, shuffle: bool):
    """A tf.data pipeline of (inputs, targets, masks) for one split.

    The masks are Keras sample weights per output: an example whose label is missing for a
    task contributes to neither that task's loss nor its metrics.
    """
    import tensorflow as tf

    labels = prepared.labels[split]
    targets = {t: encoded.y for t, encoded in labels.items()}
    masks = {t: encoded.mask for t, encoded in labels.items()}
    dataset = tf.data.Dataset.from_tensor_slices((prepared.x[split], targets, masks)).cache()
    if shuffle:
        dataset = dataset.shuffle(prepared.sizes[split], seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
