"""Binary classification: one sigmoid output, binary cross-entropy."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import TASK_TYPES, EncodedLabels
from mtl_runner.tasks.labels import ClassLabel, class_name, class_names, sorted_classes


@TASK_TYPES.register("binary")
class Binary(ClassLabel):
    """Binary classification from a label column with exactly two values.

    The positive class is the recipe's `positive`, else the second of the two sorted values
    (1 of 0/1, `true` of false/true, `male` of female/male). Metrics: `accuracy`, `f1` (of the
    positive class), `auc` (area under the ROC curve).
    """

    activation = "sigmoid"
    losses = {
        "binary_crossentropy": "binary_crossentropy",
        "focal": "binary_focal_crossentropy",
    }
    default_loss = "binary_crossentropy"
    metrics = {"accuracy": True, "f1": True, "auc": True}
    default_metrics = ("accuracy", "f1", "auc")
    primary_metric = "auc"
    options = ("positive",)

    def check(self, frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
        classes = sorted_classes(class_names(frame[self.config.label]))
        problems = []
        if len(classes) != 2:
            problems.append(("label", f"a binary label needs exactly 2 distinct values; column "
                             f"'{self.config.label}' has {len(classes)}",
                             ", ".join(classes[:6]) + (", ..." if len(classes) > 6 else "")))
        elif self.config.positive is not None and class_name(self.config.positive) not in classes:
            problems.append(("positive", f"not one of the values of column '{self.config.label}'",
                             f"{self.config.positive!r} (values: {', '.join(classes)})"))
        return problems

    def fit_encoding(self, full: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
        classes = sorted_classes(class_names(full[self.config.label]))
        positive = class_name(self.config.positive) if self.config.positive is not None else classes[-1]
        negative = next(c for c in classes if c != positive)
        return {"classes": [negative, positive], "positive": positive}

    def encode(self, frame: pd.DataFrame, info: dict[str, Any]) -> EncodedLabels:
        names = class_names(frame[self.config.label])
        known = np.isin(names, info["classes"])
        y = (names == info["positive"]).astype("float32").reshape(-1, 1)
        return EncodedLabels(y, known.astype("float32"), info)

    def unknown_what(self, info: dict[str, Any]) -> str:
        return f"neither of the two trained values ({', '.join(info['classes'])})"

    def output_units(self, info: dict[str, Any]) -> int:
        return 1

    def keras_metrics(self, info: dict[str, Any]) -> list:
        import keras

        available = {
            "accuracy": lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
            "f1": lambda: keras.metrics.F1Score(average="macro", threshold=0.5, name="f1"),
            "auc": lambda: keras.metrics.AUC(name="auc"),
        }
        return [available[m]() for m in self.metric_names()]

    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        from sklearn.metrics import f1_score, roc_auc_score

        truth, prob = y.ravel().astype(int), pred.ravel()
        values = {
            "accuracy": float(np.mean(truth == (prob >= 0.5))),
            "f1": float(f1_score(truth, prob >= 0.5, zero_division=0)),
            "auc": float(roc_auc_score(truth, prob)) if len(set(truth)) == 2 else float("nan"),
        }
        return {m: values[m] for m in self.metric_names()}

    def class_probabilities(self, output: np.ndarray) -> np.ndarray:
        positive = output.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)  # classes are [negative, positive]

    def serving_info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"type": self.name, "classes": info["classes"], "positive": info["positive"],
                "decode": "output = probability of the positive class"}
