"""Cross-field checks that a schema cannot express, run right after validation.

Each check is a small function registered with `@check`; it receives the loaded recipe and
returns the problems it found. Checks marked `data=True` read the data source (once: the
table is kept on the LoadedRecipe for training).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from mtl_runner.errors import Problem, did_you_mean
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
        if task.type in ("classification", "binary") and not isinstance(task.label, str):
            problems.append(loaded.problem(key + ("label",), f"a {task.type} task reads one label "
                                           "column", task.label))
        if task.positive is not None and task.type != "binary":
            problems.append(loaded.problem(key + ("positive",), "`positive` applies to binary tasks "
                                           "only", task.positive))
        if not task.standardize and task.type != "regression":
            problems.append(loaded.problem(key + ("standardize",), "`standardize` applies to "
                                           "regression tasks only", task.standardize))
        if task.delimiter is not None and task.type != "multilabel":
            problems.append(loaded.problem(key + ("delimiter",), "`delimiter` applies to multilabel "
                                           "tasks only", repr(task.delimiter)))
    return problems


def history_columns(recipe) -> list[str]:
    """Every column `history.csv` will have, i.e. every name early stopping may monitor."""
    names = ["loss"]
    for task_name, task in recipe.tasks.items():
        kind = TASK_TYPES.get(task.type)
        names.append(f"{task_name}_loss")
        names += [f"{task_name}_{m}" for m in (task.metrics or kind.default_metrics)]
    return names + [f"val_{n}" for n in names]


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

    problems = []
    loaded.frames = []
    for block, tasks in loaded.recipe.data_groups():
        key = data_key(loaded, block, tasks)
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

        def need(column: str, where: tuple, what: str) -> None:
            if column not in frame.columns:
                problems.append(loaded.problem(where, f"{what} '{column}' is not a column of the data",
                                               hint=did_you_mean(column, columns)
                                               or f"Columns: {', '.join(columns[:12])}"
                                               + (", ..." if len(columns) > 12 else ".")))

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
def labels_fit_their_task(loaded) -> list[Problem]:
    """Classes for classification, numbers for regression, 0/1 for multilabel columns."""
    problems = []
    for _, tasks, frame, _ in groups_with_frames(loaded):
        for name in tasks:
            task = TASK_TYPES.get(loaded.recipe.tasks[name].type)(name, loaded.recipe.tasks[name])
            if not all(c in frame.columns for c in task.label_columns()):
                continue
            for key, message, value in task.check(frame):
                problems.append(loaded.problem(("tasks", name, key), message, value))
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
        for column in numeric:
            values = pd.to_numeric(frame[column], errors="coerce")
            if np.isinf(values.to_numpy(dtype="float64")).any():
                problems.append(loaded.problem(key, f"feature column '{column}' holds Inf",
                                               hint="Replace it, or drop the column with exclude."))
        if block.missing == "error":
            gaps = [c for c in numeric + categorical if c in frame.columns and frame[c].isna().any()]
            if gaps:
                problems.append(loaded.problem(key + ("missing",), "feature columns have missing "
                                               f"values: {', '.join(gaps)}", "'error'",
                                               "Use missing: impute, or clean the data."))
    for key, features in feature_sets[1:]:
        if features != feature_sets[0][1]:
            only_here = sorted(set(features) - set(feature_sets[0][1]))
            only_there = sorted(set(feature_sets[0][1]) - set(features))
            problems.append(loaded.problem(key, "every task's data must have the same feature "
                                           f"columns; here extra: {only_here or 'none'}, missing: "
                                           f"{only_there or 'none'}",
                                           hint="Use features: [...] or exclude: [...] to align them."))
    return problems


def run_checks(loaded, check_data: bool = True) -> list[Problem]:
    """Runs every registered check; data checks only when `check_data`."""
    problems: list[Problem] = []
    for fn, needs_data in CHECKS:
        if needs_data and not check_data:
            continue
        problems.extend(fn(loaded))
    return problems
