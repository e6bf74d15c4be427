"""Multi-label classification: k independent sigmoid outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import TASK_TYPES, EncodedLabels, TaskType, missing
from mtl_runner.tasks.labels import class_names


@TASK_TYPES.register("multilabel")
class Multilabel(TaskType):
    """Multi-label classification: each example may carry any subset of k labels.

    Labels come either from several 0/1 columns (`label: [a, b, c]`) or from one column of
    delimited names (`label: tags`, `delimiter: "|"`). Metrics: `accuracy` (per label),
    `macro_f1`, `auc` (macro over labels).
    """

    activation = "sigmoid"
    losses = {"binary_crossentropy": "binary_crossentropy", "focal": "binary_focal_crossentropy"}
    default_loss = "binary_crossentropy"
    metrics = {"accuracy": True, "macro_f1": True, "auc": True}
    default_metrics = ("accuracy", "macro_f1", "auc")
    primary_metric = "macro_f1"
    options = ("delimiter",)

    def _delimited(self) -> bool:
        return isinstance(self.config.label, str)

    def _tokens(self, frame: pd.DataFrame) -> list[list[str] | None]:
        column = frame[self.config.label]
        absent = missing(column)
        delimiter = self.config.delimiter or "|"
        return [None if gone else [t.strip() for t in str(v).split(delimiter) if t.strip()]
                for v, gone in zip(column.to_numpy(dtype=object), absent)]

    def check(self, frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
        if self._delimited():
            return []
        problems = []
        for column in self.config.label:
            values = set(class_names(frame[column])) - {""}
            if not values <= {"0", "1", "true", "false"}:
                problems.append(("label", f"multilabel column '{column}' must hold 0/1 values",
                                 ", ".join(sorted(values)[:6])))
        return problems

    def fit_encoding(self, full: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
        if self._delimited():
            classes = sorted({t for tokens in self._tokens(full) if tokens for t in tokens})
        else:
            classes = list(self.config.label)
        return {"classes": classes}

    def encode(self, frame: pd.DataFrame, info: dict[str, Any]) -> EncodedLabels:
        classes = info["classes"]
        y = np.zeros((len(frame), len(classes)), dtype="float32")
        mask = np.ones(len(frame), dtype="float32")
        if self._delimited():
            index = {c: i for i, c in enumerate(classes)}
            for row, tokens in enumerate(self._tokens(frame)):
                if tokens is None:
                    mask[row] = 0.0
                    continue
                for token in tokens:
                    if token in index:
                        y[row, index[token]] = 1.0
        else:
            for j, column in enumerate(classes):
                names = class_names(frame[column])
                y[:, j] = np.isin(names, ["1", "true"])
                mask[names == ""] = 0.0
        return EncodedLabels(y, mask, info)

    def unknown_labels(self, frame: pd.DataFrame,
                       info: dict[str, Any]) -> tuple[np.ndarray, list, str]:
        rows = np.zeros(len(frame), dtype=bool)
        values: list = []
        if self._delimited():
            known = set(info["classes"])
            for row, tokens in enumerate(self._tokens(frame)):
                strange = [t for t in tokens or [] if t not in known]
                if strange:
                    rows[row] = True
                    values += strange
            trained = ", ".join(info["classes"][:10])
            return rows, values, f"labels the run was not trained on (trained: {trained})"
        for column in info["classes"]:
            names = class_names(frame[column])
            bad = (names != "") & ~np.isin(names, ["0", "1", "true", "false"])
            rows |= bad
            values += list(names[bad])
        return rows, values, "not 0/1"

    def output_units(self, info: dict[str, Any]) -> int:
        return len(info["classes"])

    def keras_metrics(self, info: dict[str, Any]) -> list:
        import keras

        available = {
            "accuracy": lambda: keras.metrics.BinaryAccuracy(name="accuracy"),
            "macro_f1": lambda: keras.metrics.F1Score(average="macro", threshold=0.5, name="macro_f1"),
            "auc": lambda: keras.metrics.AUC(multi_label=True, name="auc"),
        }
        return [available[m]() for m in self.metric_names()]

    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        from sklearn.metrics import f1_score, roc_auc_score

        guess = pred >= 0.5
        present = [j for j in range(y.shape[1]) if len(set(y[:, j])) == 2]
        values = {
            "accuracy": float(np.mean(guess == (y >= 0.5))),
            "macro_f1": float(f1_score(y.astype(int), guess.astype(int), average="macro",
                                       zero_division=0)),
            "auc": float(roc_auc_score(y[:, present], pred[:, present], average="macro"))
            if present else float("nan"),
        }
        return {m: values[m] for m in self.metric_names()}

    def decode(self, output: np.ndarray, info: dict[str, Any],
               probabilities: str = "top") -> dict[str, np.ndarray]:
        """`<task>`: the labels with probability ≥ 0.5 joined by "|"; `<task>_p_<label>` each."""
        name, classes = self.task_name, list(info["classes"])
        joined = np.array(["|".join(c for c, on in zip(classes, row) if on) for row in output >= 0.5],
                          dtype=object)
        return {name: joined, **{f"{name}_p_{c}": output[:, j] for j, c in enumerate(classes)}}

    def serving_info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"type": self.name, "classes": info["classes"],
                "decode": "output[j] = probability of classes[j]"}
