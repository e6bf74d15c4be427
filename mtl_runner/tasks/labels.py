"""Helpers shared by the categorical task types."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import missing


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
