"""The interface every task type implements, and the registry they join."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mtl_runner.registry import Registry

TASK_TYPES: Registry[type["TaskType"]] = Registry("task type")

# Whether a higher value of a metric is better; `compare` and early stopping rely on it.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "macro_f1": True,
    "f1": True,
    "auc": True,
    "r2": True,
    "loss": False,
    "mae": False,
    "rmse": False,
    "mse": False,
}


@dataclasses.dataclass
class EncodedLabels:
    """Labels of one task as arrays the model trains on.

    Attributes:
        y: float32 targets, shape (n, width).
        mask: float32 0/1 per example; 0 where the label is missing (the example does not
            count toward this task's loss or metrics).
        info: what is needed to decode predictions and to report metrics in the data's
            units: class names, positive class, regression mean and scale.
    """

    y: np.ndarray
    mask: np.ndarray
    info: dict[str, Any]


class TaskType:
    """Base class of a task type.

    Subclasses set `losses` (recipe name → Keras loss name), `metrics` (the metrics a recipe may
    ask for), `default_metrics`, and implement `fit_encoding`, `encode`, `score`.
    """

    name: ClassVar[str]
    activation: ClassVar[str]
    losses: ClassVar[dict[str, str]]
    default_loss: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    default_metrics: ClassVar[tuple[str, ...]]

    def __init__(self, task_name: str, config: Any):
        self.task_name = task_name
        self.config = config

    # -- labels ------------------------------------------------------------------------------
    def label_columns(self) -> list[str]:
        label = self.config.label
        return [label] if isinstance(label, str) else list(label)

    def check(self, frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
        """Data checks run before training: (key, message, received) for each problem."""
        return []

    def fit_encoding(self, full: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
        """Learns the encoding: the class set from all rows, scale statistics from train only."""
        raise NotImplementedError

    def encode(self, frame: pd.DataFrame, info: dict[str, Any]) -> EncodedLabels:
        raise NotImplementedError

    def output_units(self, info: dict[str, Any]) -> int:
        raise NotImplementedError

    def unknown_labels(self, frame: pd.DataFrame,
                       info: dict[str, Any]) -> tuple[np.ndarray, list, str]:
        """Rows whose label is present but cannot be encoded with the stored `info` (a class
        the run never saw, a word in a regression column): they would be dropped unseen.

        Returns:
            (rows, values, what): a boolean per row, the offending values, and what they are.
        """
        return np.zeros(len(frame), dtype=bool), [], ""

    # -- model ---------------------------------------------------------------------------------
    def keras_loss(self):
        import keras

        return keras.losses.get(self.losses[self.config.loss or self.default_loss])

    def keras_metrics(self, info: dict[str, Any]) -> list:
        raise NotImplementedError

    def metric_names(self) -> list[str]:
        return list(self.config.metrics or self.default_metrics)

    # -- evaluation ----------------------------------------------------------------------------
    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        """Metrics on labelled examples only (the caller drops masked rows), in data units."""
        raise NotImplementedError


def missing(series: pd.Series) -> np.ndarray:
    """True where a label is missing: NaN, None or an empty string."""
    values = series.to_numpy(dtype=object)
    return pd.isna(series).to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in values], dtype=bool)
