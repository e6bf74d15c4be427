"""Final metrics of a trained model on every split, in the data's own units."""

from __future__ import annotations

import pandas as pd

from mtl_runner.models.predict import predict
from mtl_runner.tasks.scoring import metrics_frame, score_outputs
from mtl_runner.training.prepare import SPLITS, Prepared


def evaluate(model, prepared: Prepared, batch_size: int) -> pd.DataFrame:
    """Scores every task on every split, counting only examples that have the task's label.

    Returns:
        A tidy frame with columns task, metric, split, value, n (labelled examples).
    """
    rows = []
    for split in SPLITS:
        if prepared.sizes[split] == 0:
            continue
        outputs = predict(model, prepared.x[split], batch_size)
        rows += score_outputs(prepared.tasks, prepared.labels[split], outputs, split)
    return metrics_frame(rows)


def metrics_table(metrics: pd.DataFrame) -> str:
    """The final metrics as a small text table: one row per task and metric, one column per split."""
    if metrics.empty:
        return "(no metrics)"
    wide = metrics.pivot_table(index=["task", "metric"], columns="split", values="value",
                               sort=False)
    wide = wide[[s for s in SPLITS if s in wide.columns]]
    return wide.to_string(float_format=lambda v: f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}")
