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
    sources: dict[str, np.ndarray] | None = None  # which data source each row came from
    sampling: Any = None                           # the recipe's training.sampling

    def with_inputs(self, x: dict[str, dict[str, np.ndarray]]) -> "Prepared":
        """The same labels with other inputs (e.g. cached backbone features)."""
        return dataclasses.replace(self, x=x)


def stratify_column(recipe) -> str | None:
    """The column the split is stratified on: the recipe's choice, or the label of the first
    task whose type stratifies (`TaskType.stratifies`)."""
    choice = recipe.data.split.stratify
    if isinstance(choice, str):
        return choice
    if not choice:
        return None
    for task in recipe.tasks.values():
        if TASK_TYPES.get(task.type).stratifies:
            return task.label
    return None


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


def split_frame(frame: pd.DataFrame, block, seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split of one data source."""
    column = block.split.stratify if isinstance(block.split.stratify, str) else None
    strata = class_names(frame[column]) if column is not None and column in frame.columns else None
    return split_indices(len(frame), block.split.validation, block.split.test, seed, strata)


def prepare(frame: pd.DataFrame | None, recipe, frames: list[pd.DataFrame] | None = None) -> Prepared:
    """Splits the data, fits encodings and feature statistics on train, encodes every split.

    Args:
        frame: the table, when all tasks share one.
        recipe: the validated recipe.
        frames: one table per `recipe.data_groups()` when tasks bring their own data.
    """
    from mtl_runner.data.kinds import settled_frames

    groups = recipe.data_groups()
    frames = settled_frames(list(frames) if frames is not None else [frame], recipe)
    frame = frames[0]
    if len(groups) > 1:
        return prepare_mixed(frames, recipe)
    skipped: list[str] = []
    images = None
    if recipe.data.image is not None:
        frame, images, skipped = read_all_images(frame, recipe.data.image)
    indices = split_frame(frame, recipe.data, recipe.split_seed())
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


def prepare_mixed(frames: list[pd.DataFrame], recipe) -> Prepared:
    """Tasks with different examples, mixed into one stream.

    Each source is split on its own; the splits are concatenated source by source. A row
    carries the features every source shares and, for each task, its label and mask 1 if the
    row comes from that task's source, else a zero target and mask 0.
    """
    groups = recipe.data_groups()
    tasks = {name: TASK_TYPES.get(config.type)(name, config) for name, config in recipe.tasks.items()}
    parts, infos = [], {}
    for (block, names), frame in zip(groups, frames):
        indices = split_frame(frame, block, recipe.split_seed(block))
        split_parts = {s: frame.iloc[rows].reset_index(drop=True) for s, rows in indices.items()}
        parts.append(split_parts)
        infos.update({t: tasks[t].fit_encoding(frame, split_parts["train"]) for t in names})
    spec = mixed_features(frames, groups[0], tasks, parts)
    x, labels, sizes, sources = {}, {}, {}, {}
    for split in SPLITS:
        pieces = [feature_arrays(p[split], spec) for p in parts]
        x[split] = {k: np.concatenate([piece[k] for piece in pieces]) for k in pieces[0]}
        sizes[split] = sum(len(p[split]) for p in parts)
        sources[split] = np.concatenate([np.full(len(p[split]), g) for g, p in enumerate(parts)])
        labels[split] = {name: mixed_labels(task, infos[name], groups, [p[split] for p in parts])
                         for name, task in tasks.items()}
    return Prepared(tasks, infos, spec, x, labels, sizes, sources=sources,
                    sampling=recipe.training.sampling)


def mixed_features(frames: list[pd.DataFrame], first_group, tasks: dict[str, TaskType],
                   parts: list[dict[str, pd.DataFrame]]) -> FeatureSpec:
    """The feature columns of the first source (the checks made every source's the same),
    with statistics from every source's train split."""
    first_block, first_tasks = first_group
    numeric, categorical = select_features(
        frames[0], first_block, [c for t in first_tasks for c in tasks[t].label_columns()])
    columns = numeric + categorical
    return fit_features(pd.concat([p["train"][columns] for p in parts], ignore_index=True),
                        pd.concat([f[columns] for f in frames], ignore_index=True), numeric, categorical)


def mixed_labels(task: TaskType, info: dict[str, Any], groups, pieces: list[pd.DataFrame]
                 ) -> EncodedLabels:
    """One task's labels over the pieces of one split, source by source: encoded where the
    source labels the task, a zero target with mask 0 elsewhere."""
    ys, masks = [], []
    for (_, names), piece in zip(groups, pieces):
        if task.task_name in names:
            encoded = task.encode(piece, info)
            ys.append(encoded.y)
            masks.append(encoded.mask)
        else:
            ys.append(np.zeros((len(piece), task.output_units(info)), "float32"))
            masks.append(np.zeros(len(piece), "float32"))
    return EncodedLabels(np.concatenate(ys), np.concatenate(masks), info)


def source_shares(counts: np.ndarray, sampling) -> np.ndarray:
    """How often each source is drawn: ∝ n_i (proportional), equal (uniform), ∝ n_i^(1/T)."""
    counts = counts.astype("float64")
    if sampling.method == "uniform":
        shares = np.ones_like(counts)
    elif sampling.method == "temperature":
        shares = counts ** (1.0 / sampling.temperature)
    else:
        shares = counts
    return shares / shares.sum()


def make_dataset(prepared: Prepared, split: str, batch_size: int, seed: int, shuffle: bool,
                 first_epoch: int = 0):
    """A tf.data pipeline of (inputs, targets, masks) for one split.

    The masks are Keras sample weights per output: an example whose label is missing for a
    task contributes to neither that task's loss nor its metrics.

    With `shuffle`, the pipeline is endless (fit it with `steps_per_epoch`) and epoch e visits
    the rows in a permutation that is a pure function of (seed, e): a run resumed at epoch
    `first_epoch` sees exactly the batches the uninterrupted run would have.
    """
    import tensorflow as tf

    labels = prepared.labels[split]
    targets = {t: encoded.y for t, encoded in labels.items()}
    masks = {t: encoded.mask for t, encoded in labels.items()}
    inputs = prepared.x[split]
    sources = prepared.sources[split] if prepared.sources else None
    if (shuffle and sources is not None and prepared.sampling.method != "proportional"
            and len(set(sources.tolist())) > 1):
        return mixed_dataset(inputs, targets, masks, sources, prepared.sampling, batch_size, seed)

    def to_float(x, y, w):
        # images stay uint8 in memory (4× smaller) and become float32 per batch
        return ({k: tf.cast(v, "float32") if v.dtype == tf.uint8 else v for k, v in x.items()}, y, w)

    if not shuffle:
        dataset = tf.data.Dataset.from_tensor_slices((inputs, targets, masks)).batch(batch_size)
        return dataset.map(to_float).prefetch(tf.data.AUTOTUNE)
    rows = prepared.sizes[split]
    tensors = tf.nest.map_structure(tf.constant, (inputs, targets, masks))

    def epoch(e):
        order = tf.argsort(tf.random.stateless_uniform([rows], seed=tf.stack([tf.cast(seed, tf.int64), e])))
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        return batches.map(lambda index: tf.nest.map_structure(lambda t: tf.gather(t, index), tensors))

    epochs = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)
    return epochs.map(to_float).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(prepared: Prepared, split: str, batch_size: int) -> int:
    return max(1, -(-prepared.sizes[split] // batch_size))


def mixed_dataset(inputs, targets, masks, sources: np.ndarray, sampling, batch_size: int, seed: int):
    """Draws sources with `source_shares`, endlessly; an epoch (`steps_per_epoch`) is as many
    examples as all sources hold together."""
    import tensorflow as tf

    def pick(tree, rows):
        return {k: v[rows] for k, v in tree.items()}

    ids = sorted(set(sources.tolist()))
    streams = []
    for g in ids:
        rows = np.flatnonzero(sources == g)
        stream = tf.data.Dataset.from_tensor_slices((pick(inputs, rows), pick(targets, rows),
                                                     pick(masks, rows)))
        streams.append(stream.cache().shuffle(len(rows), seed=seed + g).repeat())
    shares = source_shares(np.array([np.sum(sources == g) for g in ids]), sampling)
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights=shares.tolist(), seed=seed)
    return mixed.batch(batch_size).prefetch(tf.data.AUTOTUNE)  # endless: fit counts the steps
