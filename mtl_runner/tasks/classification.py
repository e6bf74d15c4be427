"""Multi-class classification: one softmax head, categorical cross-entropy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import TASK_TYPES, EncodedLabels
from mtl_runner.tasks.labels import ClassLabel, class_names, one_hot, sorted_classes


@TASK_TYPES.register("classification")
class Classification(ClassLabel):
    """Multi-class classification from one label column.

    Targets are one-hot; examples with a missing label are masked out of loss and metrics.
    Metrics: `accuracy`, `macro_f1` (unweighted mean of per-class F1).
    """

    activation = "softmax"
    losses = {
        "categorical_crossentropy": "categorical_crossentropy",
        "focal": "categorical_focal_crossentropy",
    }
    default_loss = "categorical_crossentropy"
    metrics = {"accuracy": True, "macro_f1": True}
    default_metrics = ("accuracy", "macro_f1")
    primary_metric = "accuracy"

    def check(self, frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
        classes = sorted_classes(class_names(frame[self.config.label]))
        if len(classes) < 2:
            return [("label", f"a classification label needs at least 2 classes; column "
                     f"'{self.config.label}' has {len(classes)}", str(classes))]
        if len(classes) > max(2, len(frame) // 2):
            return [("label", f"column '{self.config.label}' has {len(classes)} classes in "
                     f"{len(frame)} rows; is it a regression target or an identifier?", None)]
        return []

    def fit_encoding(self, full: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
        return {"classes": sorted_classes(class_names(full[self.config.label]))}

    def encode(self, frame: pd.DataFrame, info: dict[str, Any]) -> EncodedLabels:
        y, mask = one_hot(class_names(frame[self.config.label]), info["classes"])
        return EncodedLabels(y, mask, info)

    def unknown_what(self, info: dict[str, Any]) -> str:
        return f"classes the run was not trained on (trained: {', '.join(info['classes'][:10])})"

    def output_units(self, info: dict[str, Any]) -> int:
        return len(info["classes"])

    def keras_metrics(self, info: dict[str, Any]) -> list:
        import keras

        available = {
            "accuracy": lambda: keras.metrics.CategoricalAccuracy(name="accuracy"),
            "macro_f1": lambda: keras.metrics.F1Score(average="macro", name="macro_f1"),
        }
        return [available[m]() for m in self.metric_names()]

    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        from sklearn.metrics import f1_score

        truth, guess = y.argmax(axis=1), pred.argmax(axis=1)
        values = {
            "accuracy": float(np.mean(truth == guess)),
            "macro_f1": float(f1_score(truth, guess, average="macro",
                                       labels=range(y.shape[1]), zero_division=0)),
        }
        return {m: values[m] for m in self.metric_names()}

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        return output

    def serving_info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"type": self.name, "classes": info["classes"],
                "decode": "output[j] = probability of classes[j]"}
