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


@check(data=True)
def data_source_is_readable(loaded) -> list[Problem]:
    from mtl_runner.data.sources import SourceError, read_source

    try:
        loaded.frame = read_source(loaded.recipe.data, loaded.resolve_path)
    except SourceError as error:
        hint = "Paths are relative to the recipe's folder." if error.key == ("data", "path") else ""
        return [loaded.problem(error.key, error.message, hint=hint)]
    return []


@check(data=True)
def columns_exist(loaded) -> list[Problem]:
    """Label, feature, exclude and categorical columns must be columns of the data."""
    frame = getattr(loaded, "frame", None)
    if frame is None:
        return []
    columns = [str(c) for c in frame.columns]
    problems = []

    def need(column: str, key: tuple, what: str) -> None:
        if column not in frame.columns:
            problems.append(loaded.problem(key, f"{what} '{column}' is not a column of the data",
                                           hint=did_you_mean(column, columns)
                                           or f"Columns: {', '.join(columns[:12])}"
                                           + (", ..." if len(columns) > 12 else ".")))

    labels = set()
    for name, task in loaded.recipe.tasks.items():
        if isinstance(task.label, str):
            need(task.label, ("tasks", name, "label"), "label column")
            labels.add(task.label)
        else:
            for i, column in enumerate(task.label):
                need(column, ("tasks", name, "label", i), "label column")
                labels.add(column)
    data = loaded.recipe.data
    if data.image is not None:
        need(data.image.column, ("data", "image", "column"), "image column")
    for field in ("features", "exclude", "categorical"):
        for i, column in enumerate(getattr(data, field) or []):
            need(column, ("data", field, i), f"{field.rstrip('s')} column")
            if field == "features" and column in labels:
                problems.append(loaded.problem(("data", "features", i), f"'{column}' is a label; "
                                               "a label cannot also be a feature"))
    return problems


@check(data=True)
def labels_fit_their_task(loaded) -> list[Problem]:
    """Classes for classification, numbers for regression, 0/1 for multilabel columns."""
    frame = getattr(loaded, "frame", None)
    if frame is None:
        return []
    problems = []
    for name, config in loaded.recipe.tasks.items():
        task = TASK_TYPES.get(config.type)(name, config)
        if not all(c in frame.columns for c in task.label_columns()):
            continue
        for key, message, value in task.check(frame):
            problems.append(loaded.problem(("tasks", name, key), message, value))
    return problems


@check(data=True)
def features_are_usable(loaded) -> list[Problem]:
    from mtl_runner.data.features import select_features

    frame = getattr(loaded, "frame", None)
    recipe = loaded.recipe
    labels = [c for t in recipe.tasks.values() for c in ([t.label] if isinstance(t.label, str) else t.label)]
    if frame is None or not all(c in frame.columns for c in labels) or recipe.data.image:
        return []
    numeric, categorical = select_features(frame, recipe.data, labels)
    numeric = [c for c in numeric if c in frame.columns]
    problems = []
    if not numeric and not categorical:
        problems.append(loaded.problem(("data",), "no feature columns are left once labels and "
                                       "excluded columns are taken out"))
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        if np.isinf(values.to_numpy(dtype="float64")).any():
            problems.append(loaded.problem(("data",), f"feature column '{column}' holds Inf",
                                           hint="Replace it, or drop the column with data.exclude."))
    if recipe.data.missing == "error":
        gaps = [c for c in numeric + categorical if frame[c].isna().any()]
        if gaps:
            problems.append(loaded.problem(("data", "missing"), "feature columns have missing "
                                           f"values: {', '.join(gaps)}", "'error'",
                                           "Use missing: impute, or clean the data."))
    return problems


def run_checks(loaded, check_data: bool = True) -> list[Problem]:
    """Runs every registered check; data checks only when `check_data`."""
    problems: list[Problem] = []
    for fn, needs_data in CHECKS:
        if needs_data and not check_data:
            continue
        problems.extend(fn(loaded))
    return problems
