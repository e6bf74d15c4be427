"""Regression: linear outputs on standardized targets, metrics in the data's own units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import TASK_TYPES, EncodedLabels, TaskType, missing


@TASK_TYPES.register("regression")
class Regression(TaskType):
    """Regression on one or more numeric columns.

    Targets are standardized with the train split's mean and standard deviation, so that a
    task measured in grams does not drown one measured in millimetres; MAE and RMSE are
    reported back in the column's own units. Metrics: `mae`, `rmse`, `r2`.
    """

    activation = "linear"
    losses = {"mse": "mean_squared_error", "mae": "mean_absolute_error",
              "huber": "huber", "log_cosh": "log_cosh"}
    default_loss = "mse"
    metrics = {"mae": False, "rmse": False, "r2": True}
    default_metrics = ("mae", "rmse", "r2")
    primary_metric = "mae"  # R² near 0 on a hard task would dominate Δm's relative changes
    numeric_labels = True
    gaussian_likelihood = True
    options = ("standardize",)

    def check(self, frame: pd.DataFrame) -> list[tuple[str, str, str | None]]:
        problems = []
        for column in self.label_columns():
            values = frame[column]
            numeric = pd.to_numeric(values, errors="coerce")
            bad = values[numeric.isna() & values.notna()]
            if len(bad):
                problems.append(("label", f"a regression label must be numeric; column '{column}' "
                                 f"holds {len(bad)} non-numeric value(s)", repr(bad.iloc[0])))
            elif not np.isfinite(numeric.dropna().to_numpy(dtype=float)).all():
                problems.append(("label", f"column '{column}' holds Inf", None))
            elif numeric.notna().sum() < 2:
                problems.append(("label", f"column '{column}' has fewer than 2 numeric values", None))
        return problems

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        return np.stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64")
                         for c in self.label_columns()], axis=1)

    def fit_encoding(self, full: pd.DataFrame, train: pd.DataFrame) -> dict[str, Any]:
        values = self._values(train)
        mean = np.nanmean(values, axis=0)
        scale = np.nanstd(values, axis=0)
        scale[~(scale > 0)] = 1.0
        if not getattr(self.config, "standardize", True):  # train on the raw scale
            mean, scale = np.zeros_like(mean), np.ones_like(scale)
        return {"columns": self.label_columns(), "mean": mean.tolist(), "scale": scale.tolist()}

    def encode(self, frame: pd.DataFrame, info: dict[str, Any]) -> EncodedLabels:
        values = self._values(frame)
        mask = (~np.isnan(values).any(axis=1)).astype("float32")
        y = (values - np.array(info["mean"])) / np.array(info["scale"])
        return EncodedLabels(np.nan_to_num(y).astype("float32"), mask, info)

    def unknown_labels(self, frame: pd.DataFrame,
                       info: dict[str, Any]) -> tuple[np.ndarray, list, str]:
        rows = np.zeros(len(frame), dtype=bool)
        values: list = []
        for column in self.label_columns():
            cells = frame[column]
            bad = pd.to_numeric(cells, errors="coerce").isna().to_numpy() & ~missing(cells)
            values += list(cells[bad])
            rows |= bad
        return rows, values, "not numbers"

    def output_units(self, info: dict[str, Any]) -> int:
        return len(info["columns"])

    def keras_metrics(self, info: dict[str, Any]) -> list:
        import keras

        from mtl_runner.models.metrics import ScaledMeanAbsoluteError, ScaledRootMeanSquaredError

        available = {
            "mae": lambda: ScaledMeanAbsoluteError(scale=info["scale"], name="mae"),
            "rmse": lambda: ScaledRootMeanSquaredError(scale=info["scale"], name="rmse"),
            "r2": lambda: keras.metrics.R2Score(name="r2"),
        }
        return [available[m]() for m in self.metric_names()]

    def in_data_units(self, pred: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Standardized values back in the data's units."""
        return pred * np.array(info["scale"]) + np.array(info["mean"])

    def score(self, y: np.ndarray, pred: np.ndarray, info: dict[str, Any]) -> dict[str, float]:
        from sklearn.metrics import r2_score

        truth, guess = self.in_data_units(y, info), self.in_data_units(pred, info)
        error = guess - truth
        values = {
            "mae": float(np.mean(np.abs(error))),
            "rmse": float(np.sqrt(np.mean(error ** 2))),
            "r2": float(r2_score(truth, guess)) if len(truth) > 1 else float("nan"),
        }
        return {m: values[m] for m in self.metric_names()}

    def decode(self, output: np.ndarray, info: dict[str, Any],
               probabilities: str = "top") -> dict[str, np.ndarray]:
        """`<task>` for one label column, else `<task>_<column>` each, in the data's units."""
        values, columns = self.in_data_units(output, info), info["columns"]
        if len(columns) == 1:
            return {self.task_name: values[:, 0]}
        return {f"{self.task_name}_{c}": values[:, j] for j, c in enumerate(columns)}

    def serving_info(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"type": self.name, "columns": info["columns"], "mean": info["mean"],
                "scale": info["scale"], "decode": "value = output * scale + mean"}
