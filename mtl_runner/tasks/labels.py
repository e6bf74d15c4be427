"""Helpers shared by the categorical task types, and the base of those with one class label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import TaskType, missing


def class_name(value: Any) -> str:
    """A label value as a class name: 1, 1.0 and "1" all become "1"."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    return str(value).strip()


def class_names(series: pd.Series) -> np.ndarray:
    """Class names of a label column; missing labels become "" (masked later)."""
    absent = missing(series)
    names = np.array([class_name(v) for v in series.to_numpy(dtype=object)], dtype=object)
    names[absent] = ""
    return names


def sorted_classes(names: np.ndarray) -> list[str]:
    """Distinct non-empty class names, numerically ordered when they are all numbers."""
    distinct = sorted({n for n in names if n})
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def one_hot(names: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One-hot targets and a mask; unknown or missing names get a zero row and mask 0."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(names), len(classes)), dtype="float32")
    mask = np.zeros(len(names), dtype="float32")
    for row, name in enumerate(names):
        position = index.get(name)
        if position is not None:
            y[row, position] = 1.0
            mask[row] = 1.0
    return y, mask


class ClassLabel(TaskType):
    """Base of the task types whose label is one column of class names (classification,
    binary): they stratify a split, find labels the run never saw, and predict the likeliest
    class, the same way.

    Subclasses implement `class_probabilities` (their output as one probability per class of
    `info["classes"]`) and `unknown_what` (how an error names the values they cannot take).
    """

    stratifies = True
    one_label_column = True

    def unknown_labels(self, frame: pd.DataFrame,
                       info: dict[str, Any]) -> tuple[np.ndarray, list, str]:
        names = class_names(frame[self.config.label])
        rows = (names != "") & ~np.isin(names, info["classes"])
        return rows, list(names[rows]), self.unknown_what(info)

    def unknown_what(self, info: dict[str, Any]) -> str:
        """What the values are that the run cannot encode, for an error message."""
        raise NotImplementedError

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        """The head's output as probabilities, one column per class of the encoding."""
        raise NotImplementedError

    def decode(self, output: np.ndarray, info: dict[str, Any],
               probabilities: str = "top") -> dict[str, np.ndarray]:
        """`<task>` (the likeliest class) and `<task>_probability` (its probability), plus
        `<task>_p_<class>` per class with `probabilities="all"`."""
        name, classes = self.task_name, list(info["classes"])
        output = self.class_probabilities(output)
        best = output.argmax(axis=1)
        columns = {name: np.array(classes, dtype=object)[best],
                   f"{name}_probability": output[np.arange(len(output)), best]}
        if probabilities == "all":
            columns.update({f"{name}_p_{c}": output[:, j] for j, c in enumerate(classes)})
        return columns
