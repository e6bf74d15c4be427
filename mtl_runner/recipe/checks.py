"""Cross-field checks that a schema cannot express, run right after validation.

Each check is a small function registered with `@check`; it receives the loaded recipe and
returns the problems it found. Checks marked `data=True` read the data source (once: the
table is kept on the LoadedRecipe for training).
"""

from __future__ import annotations

import difflib
from typing import Callable

import numpy as np
import pandas as pd

from mtl_runner.errors import (Problem, column_list, did_you_mean, names_can_be_shown, received,
                                shown_name)
from mtl_runner.tasks import TASK_TYPES

Check = Callable[["LoadedRecipe"], list[Problem]]  # noqa: F821
CHECKS: list[tuple[Check, bool]] = []


def check(data: bool = False) -> Callable[[Check], Check]:
    def decorator(fn: Check) -> Check:
        CHECKS.append((fn, data))
        return fn

    return decorator


@check()
def task_options_fit_their_type(loaded) -> list[Problem]:
    """A task's loss and metrics must exist for its type; options belong to their type."""
    problems = []
    for name, task in loaded.recipe.tasks.items():
        kind = TASK_TYPES.get(task.type)
        key = ("tasks", name)
        if task.loss is not None and task.loss not in kind.losses:
            problems.append(loaded.problem(key + ("loss",), f"unknown loss for a {task.type} task",
                                           repr(task.loss), did_you_mean(task.loss, kind.losses)
                                           or f"Choose one of: {', '.join(kind.losses)}."))
        for i, metric in enumerate(task.metrics or []):
            if metric not in kind.metrics:
                problems.append(loaded.problem(key + ("metrics", i),
                                               f"unknown metric for a {task.type} task", repr(metric),
                                               did_you_mean(metric, kind.metrics)
                                               or f"Choose from: {', '.join(kind.metrics)}."))
        chosen = task.metrics or kind.default_metrics
        if task.primary_metric is not None and task.primary_metric not in chosen:
            problems.append(loaded.problem(key + ("primary_metric",), "must be one of the task's "
                                           "metrics", repr(task.primary_metric),
                                           did_you_mean(task.primary_metric, chosen)
                                           or f"Choose from: {', '.join(chosen)}."))
        if kind.one_label_column and not isinstance(task.label, str):
            problems.append(loaded.problem(key + ("label",), f"a {task.type} task reads one label "
                                           "column", task.label))
        problems += foreign_options(loaded, name, task)
    return problems


def foreign_options(loaded, name: str, task) -> list[Problem]:
    """A task key that only some types read (`TaskType.options`), set on a task of another."""
    owners: dict[str, list[str]] = {}
    for type_name, kind in TASK_TYPES.items():
        for option in kind.options:
            owners.setdefault(option, []).append(type_name)
    problems = []
    for option, types in owners.items():
        value = getattr(task, option)
        if task.type in types or value == type(task).model_fields[option].default:
            continue
        problems.append(loaded.problem(("tasks", name, option), f"`{option}` applies to "
                                       f"{' and '.join(types)} tasks only", received(value)))
    return problems


# What Keras 3 accepts as a layer's `activation` by name and can apply to a layer's output
# alone (`threshold` needs more arguments, `glu` an even width); a test keeps this beside Keras.
ACTIVATIONS = ("celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu",
               "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax",
               "mish", "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax",
               "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus",
               "swish", "tanh", "tanh_shrink")


@check()
def activations_are_known(loaded) -> list[Problem]:
    """Every `activation` of the trunk and heads names a Keras activation (else the model
    would fail to build, after validation said yes)."""
    model = loaded.recipe.model
    blocks = [(("model", "trunk"), model.trunk), (("model", "heads"), model.heads)]
    blocks += [(("tasks", name, "head"), task.head) for name, task in loaded.recipe.tasks.items()
               if task.head is not None]
    problems = []
    for key, block in blocks:
        value = getattr(block, "activation", None)
        if isinstance(value, str) and value not in ACTIVATIONS:
            problems.append(loaded.problem(key + ("activation",), "unknown activation",
                                           repr(value), did_you_mean(value, ACTIVATIONS)
                                           or f"Choose one of: {', '.join(ACTIVATIONS)}."))
    return problems


def history_columns(recipe) -> list[str]:
    """Every loss and metric column `history.csv` will have, i.e. every name early stopping may
    monitor (not the bookkeeping columns epoch, stage, learning_rate, weight_<task>)."""
    names = ["loss"]
    for task_name, task in recipe.tasks.items():
        kind = TASK_TYPES.get(task.type)
        names.append(f"{task_name}_loss")
        names += [f"{task_name}_{m}" for m in (task.metrics or kind.default_metrics)]
    return names + [f"val_{n}" for n in names]


@check()
def task_names_cannot_collide(loaded) -> list[Problem]:
    """Every (task, metric, split) value gets its own history.csv column, and every task its
    own layers: reserved names, names one reader could not tell apart, and repeated metrics
    are refused (see `mtl_runner.recipe.names`)."""
    problems = reserved_or_ambiguous_names(loaded) + repeated_metrics(loaded)
    if not problems:  # the rules above make this impossible; kept as the definition
        problems = history_column_clashes(loaded)
    return problems


def reserved_or_ambiguous_names(loaded) -> list[Problem]:
    """A task named like a column every run writes, or two tasks one reader cannot tell apart."""
    from mtl_runner.recipe import names

    problems = []
    tasks = list(loaded.recipe.tasks)
    for name in tasks:
        why = names.reserved_task_name(name)
        if why:
            problems.append(loaded.problem(("tasks", name), why, hint="Rename the task "
                                           "(e.g. body_weight, not weight)."))
    for i, first in enumerate(tasks):
        for second in tasks[i + 1:]:
            why = names.ambiguous_pair(first, second)
            if why:
                problems.append(loaded.problem(("tasks", second), why, hint="Rename one of them."))
    return problems


def repeated_metrics(loaded) -> list[Problem]:
    problems = []
    for name, task in loaded.recipe.tasks.items():
        metrics = task.metrics or []
        repeated = sorted({m for m in metrics if metrics.count(m) > 1})
        if repeated:
            problems.append(loaded.problem(("tasks", name, "metrics"), "each metric may be listed "
                                           "once; a repeated one would log to one column twice",
                                           ", ".join(repeated)))
    return problems


def history_column_clashes(loaded) -> list[Problem]:
    """A history.csv column two owners (tasks, or every run) would both write."""
    from mtl_runner.recipe import names

    problems = []
    owner_of: dict[str, str] = {}
    for owner, columns in names.history_columns_by_owner(loaded.recipe).items():
        for column in columns:
            other = owner_of.setdefault(column, owner)
            if other != owner:
                problems.append(loaded.problem(("tasks", owner or other), f"history.csv column "
                                               f"'{column}' would be written by both "
                                               f"{other or 'every run'!r} and {owner!r}"))
    return problems


@check()
def early_stopping_monitor_exists(loaded) -> list[Problem]:
    stopping = loaded.recipe.training.early_stopping
    if stopping is None:
        return []
    key = ("training", "early_stopping", "monitor")
    columns = history_columns(loaded.recipe)
    if stopping.monitor not in columns:
        return [loaded.problem(key, "not a metric this recipe records", repr(stopping.monitor),
                               did_you_mean(stopping.monitor, columns)
                               or "Use val_loss, or val_<task>_<metric>.")]
    if stopping.monitor.startswith("val_") and loaded.recipe.data.split.validation == 0:
        return [loaded.problem(key, "monitors a validation metric but data.split.validation is 0",
                               repr(stopping.monitor), "Set a validation fraction, or monitor "
                               "a training metric.")]
    return []


def data_key(loaded, block, tasks: list[str]) -> tuple:
    """Where a data block sits in the recipe: `data`, or `tasks.<name>.data`."""
    for name in tasks:
        if loaded.recipe.tasks[name].data is block:
            return ("tasks", name, "data")
    return ("data",)


def groups_with_frames(loaded):
    """(block, tasks, frame, key) for every data source that could be read."""
    for (block, tasks), frame in zip(loaded.recipe.data_groups(), loaded.frames or []):
        if frame is not None:
            yield block, tasks, frame, data_key(loaded, block, tasks)


def label_columns(recipe, tasks: list[str]) -> list[str]:
    return [c for t in tasks for c in
            ([recipe.tasks[t].label] if isinstance(recipe.tasks[t].label, str) else recipe.tasks[t].label)]


@check(data=True)
def data_source_is_readable(loaded) -> list[Problem]:
    from mtl_runner.data.sources import SourceError, read_source
    from mtl_runner.reading import FileRefused, check_regular_file, data_file_limit

    problems = []
    loaded.frames = []
    for block, tasks in loaded.recipe.data_groups():
        key = data_key(loaded, block, tasks)
        if block.source in ("csv", "parquet", "npz"):
            try:  # never open a FIFO or a device, nor read a file larger than memory allows
                check_regular_file(loaded.resolve_path(block.path), data_file_limit(), "data file")
            except FileRefused as error:
                if not error.missing:  # a missing file: read_source says so, with its hint
                    loaded.frames.append(None)
                    problems.append(loaded.problem(key + ("path",), str(error), hint=error.hint))
                    continue
        try:
            loaded.frames.append(read_source(block, loaded.resolve_path))
        except SourceError as error:
            loaded.frames.append(None)
            hint = getattr(error, "hint", "")
            problems.append(loaded.problem(key + error.key[1:], error.message, hint=hint))
    loaded.frame = loaded.frames[0] if loaded.frames else None
    return problems


@check(data=True)
def columns_exist(loaded) -> list[Problem]:
    """Label, feature, exclude and categorical columns must be columns of their data."""
    problems = []
    for block, tasks, frame, key in groups_with_frames(loaded):
        columns = [str(c) for c in frame.columns]
        # name the file's columns only if it is a table: never echo another file's first line
        table = names_can_be_shown(frame.columns, len(frame))

        def need(column: str, where: tuple, what: str) -> None:
            if column not in frame.columns:
                close = difflib.get_close_matches(column, columns, n=1) if table else []
                hint = (f"Did you mean {shown_name(close[0])}?" if close else
                        f"Columns: {column_list(columns)}." if table else
                        "The file did not read as a table with named columns; check data.path.")
                problems.append(loaded.problem(where, f"{what} {shown_name(column)} is not a "
                                               "column of the data", hint=hint))

        for name in tasks:
            label = loaded.recipe.tasks[name].label
            for i, column in enumerate([label] if isinstance(label, str) else label):
                need(column, ("tasks", name, "label") + (() if isinstance(label, str) else (i,)),
                     "label column")
        labels = set(label_columns(loaded.recipe, tasks))
        if block.image is not None:
            need(block.image.column, key + ("image", "column"), "image column")
        for field in ("features", "exclude", "categorical"):
            for i, column in enumerate(getattr(block, field) or []):
                need(column, key + (field, i), f"{field.rstrip('s')} column")
                if field == "features" and column in labels:
                    problems.append(loaded.problem(key + ("features", i), f"'{column}' is a label; "
                                                   "a label cannot also be a feature"))
    return problems


@check(data=True)
def feature_kinds_are_decided(loaded) -> list[Problem]:
    """Each feature column's kind by the rules of `mtl_runner.data.kinds`; training reads the
    settled tables (numbers converted, date and list columns as `data.columns` chose)."""
    from mtl_runner.data.kinds import settle_groups

    return settle_groups(loaded, groups_with_frames, label_columns)


@check(data=True)
def labels_fit_their_task(loaded) -> list[Problem]:
    """Classes for classification, numbers for regression, 0/1 for multilabel columns."""
    problems = []
    for _, tasks, frame, _ in groups_with_frames(loaded):
        for name in tasks:
            task = TASK_TYPES.get(loaded.recipe.tasks[name].type)(name, loaded.recipe.tasks[name])
            if not all(c in frame.columns for c in task.label_columns()):
                continue
            if task.one_label_column and not isinstance(task.config.label, str):
                continue  # reported by task_options_fit_their_type; its check reads one column
            for key, message, value in task.check(frame):
                # `value` quotes cells (classes, a bad value): never shown, a cell may be a secret
                shown = repr(loaded.recipe.tasks[name].positive) if key == "positive" else None
                problems.append(loaded.problem(("tasks", name, key), message, shown))
    return problems


@check(data=True)
def features_are_usable(loaded) -> list[Problem]:
    from mtl_runner.data.features import select_features

    problems = []
    feature_sets = []
    for block, tasks, frame, key in groups_with_frames(loaded):
        labels = label_columns(loaded.recipe, tasks)
        if not all(c in frame.columns for c in labels) or block.image:
            continue
        numeric, categorical = select_features(frame, block, labels)
        numeric = [c for c in numeric if c in frame.columns]
        feature_sets.append((key, sorted(numeric + categorical)))
        if not numeric and not categorical:
            problems.append(loaded.problem(key, "no feature columns are left once labels and "
                                           "excluded columns are taken out"))
        problems += numeric_feature_problems(loaded, key, frame, numeric)
        if block.missing == "error":
            gaps = [c for c in numeric + categorical if c in frame.columns and frame[c].isna().any()]
            if gaps:
                problems.append(loaded.problem(key + ("missing",), "feature columns have missing "
                                               f"values: {_plain_names(gaps)}", "'error'",
                                               "Use missing: impute, or clean the data."))
    return problems + feature_sets_differ(loaded, feature_sets)


def numeric_feature_problems(loaded, key: tuple, frame: pd.DataFrame,
                             numeric: list[str]) -> list[Problem]:
    """Inf, or values too large for float32 once normalized, in numeric feature columns."""
    problems = []
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        if np.isinf(values.to_numpy(dtype="float64")).any():
            problems.append(loaded.problem(key, f"feature column {shown_name(column)} holds "
                                           "Inf", hint="Replace it, or drop the column with "
                                           "exclude."))
        else:
            problems += magnitude_problems(loaded, key, column, values, MAX_FEATURE_MAGNITUDE,
                                           "feature column", "so that it and its variance "
                                           "stay finite in float32 after normalization")
    return problems


def feature_sets_differ(loaded, feature_sets: list[tuple[tuple, list[str]]]) -> list[Problem]:
    """Data sources mixed into one stream whose feature columns are not the first one's."""
    problems = []
    for key, features in feature_sets[1:]:
        if features != feature_sets[0][1]:
            only_here = sorted(set(features) - set(feature_sets[0][1]))
            only_there = sorted(set(feature_sets[0][1]) - set(features))
            problems.append(loaded.problem(key, "every task's data must have the same feature "
                                           f"columns; here extra: {only_here or 'none'}, missing: "
                                           f"{only_there or 'none'}",
                                           hint="Use features: [...] or exclude: [...] to align them."))
    return problems


# Training casts features and targets to float32 (largest ~3.4e38), normalizes features with
# their variance, and sums squared regression errors in the data's units (RMSE): values beyond
# these overflow to Inf, and the run would train on NaN or report wrong numbers.
MAX_FEATURE_MAGNITUDE = 1e18  # the variance of values within ±1e18 is at most 1e36
MAX_LABEL_MAGNITUDE = 1e15  # squared errors within ±2e15, summed over 1e7 rows, stay finite


def _plain_names(columns: list, limit: int = 20) -> str:
    names = [shown_name(c)[1:-1] for c in columns[:limit]]
    return ", ".join(names) + (f", ... ({len(columns)} in all)" if len(columns) > limit else "")


def magnitude_problems(loaded, key: tuple, column: str, values: pd.Series, limit: float, what: str,
                       why: str) -> list[Problem]:
    """A problem when a numeric column holds values beyond ±`limit` (no value is quoted)."""
    numbers = values.to_numpy(dtype="float64")
    numbers = numbers[np.isfinite(numbers)]
    if not len(numbers) or np.abs(numbers).max() <= limit:
        return []
    count = int((np.abs(numbers) > limit).sum())
    return [loaded.problem(key, f"{what} {shown_name(column)} holds {count} value(s) beyond "
                           f"±{limit:.0e}; values must stay within ±{limit:.0e} {why}",
                           hint="Rescale the column (e.g. divide it by a power of ten), or "
                           "drop it.")]


@check(data=True)
def regression_labels_fit_float32(loaded) -> list[Problem]:
    """Regression targets small enough that training's float32 arithmetic stays finite."""
    problems = []
    for _, tasks, frame, _ in groups_with_frames(loaded):
        for name in tasks:
            task = loaded.recipe.tasks[name]
            if not TASK_TYPES.get(task.type).numeric_labels:
                continue
            labels = [task.label] if isinstance(task.label, str) else list(task.label)
            for i, column in enumerate(labels):
                if column not in frame.columns:
                    continue
                where = ("tasks", name, "label") + (() if isinstance(task.label, str) else (i,))
                problems += magnitude_problems(
                    loaded, where, column, pd.to_numeric(frame[column], errors="coerce"),
                    MAX_LABEL_MAGNITUDE, "regression label column",
                    "so that the loss and the squared errors behind RMSE stay finite in float32")
    return problems


@check(data=True)
def model_names_are_distinct(loaded) -> list[Problem]:
    """Every model input and layer gets its own name: feature columns whose input names are
    equal once sanitised (`x 1` and `x_1`), or equal to a task's layers or the model's own."""
    from mtl_runner.data.features import input_name, select_features
    from mtl_runner.recipe import names

    recipe = loaded.recipe
    problems = []
    inputs: dict[str, list[str]] = {}
    key_of: dict[str, tuple] = {}
    for block, tasks, frame, key in groups_with_frames(loaded):
        labels = label_columns(recipe, tasks)
        if not all(c in frame.columns for c in labels) or block.image:
            continue
        numeric, categorical = select_features(frame, block, labels)
        for column in [c for c in numeric + categorical if c not in labels]:  # else reported
            columns = inputs.setdefault(input_name(str(column)), [])
            if column not in columns:
                columns.append(column)
            key_of.setdefault(str(column), key)
    for column, why in names.input_name_clashes(inputs, recipe.model.trunk.type):
        problems.append(loaded.problem(key_of[str(column)], why, hint="Rename the column in the "
                                       "data, or leave one out with exclude: [...]."))
    depths = {name: len((task.head or recipe.model.heads).units)
              for name, task in recipe.tasks.items()}
    for task, why in names.layer_name_clashes(recipe.tasks, depths, inputs):
        problems.append(loaded.problem(("tasks", task), why, hint="Rename the task, or leave the "
                                       "column out with exclude: [...]."))
    return problems


def run_checks(loaded, check_data: bool = True) -> list[Problem]:
    """Runs every registered check; data checks only when `check_data`."""
    problems: list[Problem] = []
    for fn, needs_data in CHECKS:
        if needs_data and not check_data:
            continue
        problems.extend(fn(loaded))
    return problems
