"""The interface every task type implements, and the registry they join."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mtl_runner.registry import Registry

TASK_TYPES: Registry[type["TaskType"]] = Registry("task type")

# Whether a higher value of a metric is better; `compare` and early stopping rely on it. The
# metrics every run logs are here; each task type adds its own as it is defined
# (`TaskType.metrics`), so a new metric's direction is declared once, beside its computation.
HIGHER_IS_BETTER: dict[str, bool] = {"loss": False, "mse": False}


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
    """Base class of a task type: everything that depends on what kind of label a task has.

    Subclasses set the class attributes below and implement `fit_encoding`, `encode`,
    `output_units`, `keras_metrics`, `score`, `decode` and `serving_info`; callers ask the type
    instead of comparing its name.

    Attributes:
        name: the registered type name (set by `TASK_TYPES.register`).
        activation: the head's output activation.
        losses: recipe loss name → Keras loss name.
        default_loss: the loss when the recipe names none.
        metrics: every metric a recipe may ask for → whether a higher value is better.
        default_metrics: the metrics when the recipe names none.
        primary_metric: the one metric that enters Δm in `mtl compare` by default.
        stratifies: `split.stratify: true` stratifies on the label of the first task whose
            type stratifies (a class label; a number or a set of labels has no strata).
        one_label_column: the recipe's `label` must name one column, not a list.
        numeric_labels: labels are numbers the loss does arithmetic on, so they must stay
            within float32's reach (`recipe.checks.MAX_LABEL_MAGNITUDE`).
        options: the task keys of the recipe that only this type reads (`positive`, ...).
        gaussian_likelihood: the loss reads as a Gaussian negative log-likelihood, which
            uncertainty weighting scales by 1/(2σ²) rather than 1/σ².
    """

    name: ClassVar[str]
    activation: ClassVar[str]
    losses: ClassVar[dict[str, str]]
    default_loss: ClassVar[str]
    metrics: ClassVar[dict[str, bool]]
    default_metrics: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    stratifies: ClassVar[bool] = False
    one_label_column: ClassVar[bool] = False
    numeric_labels: ClassVar[bool] = False
    options: ClassVar[tuple[str, ...]] = ()
    gaussian_likelihood: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for metric, higher in cls.__dict__.get("metrics", {}).items():
            if HIGHER_IS_BETTER.setdefault(metric, higher) != higher:
                raise TypeError(f"{cls.__name__}.metrics: '{metric}' is better "
                                f"{'higher' if higher else 'lower'} here but not in another type")

    def __init__(self, task_name: str, config: Any):
        self.task_name = task_name
        self.config = config

    @classmethod
    def higher_is_better(cls, metric: str) -> bool:
        """Whether a higher value of one of this type's metrics is better."""
        return cls.metrics[metric]

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

    # -- evaluation and serving ----------------------------------------------------------------
    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        """Metrics on labelled examples only (the caller drops masked rows), in data units."""
        raise NotImplementedError

    def decode(self, output: np.ndarray, info: dict[str, Any],
               probabilities: str = "top") -> dict[str, np.ndarray]:
        """The model's output for this task as named prediction columns, in the data's terms.

        Args:
            output: the head's output, one row per example.
            info: the task's stored label encoding.
            probabilities: "top" or "all" (also one probability column per class), for the
                types that predict a class.
        """
        raise NotImplementedError

    def serving_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """How a program that serves the exported model reads this task's output (mtl.json)."""
        raise NotImplementedError


def missing(series: pd.Series) -> np.ndarray:
    """True where a label is missing: NaN, None or an empty string."""
    values = series.to_numpy(dtype=object)
    return pd.isna(series).to_numpy() | np.array([isinstance(v, str) and not v.strip() for v in values], dtype=bool)
