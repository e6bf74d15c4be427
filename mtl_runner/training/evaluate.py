"""Final metrics of a trained model on every split, in the data's own units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.training.prepare import SPLITS, Prepared


def predict(model, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """Model outputs by task name, as numpy arrays."""
    if not x or len(next(iter(x.values()))) == 0:
        return {}
    import tensorflow as tf

    # string inputs (categorical columns) go through tf.data: Keras' numpy adapter refuses them
    batches = tf.data.Dataset.from_tensor_slices(x).batch(max(batch_size, 256))
    outputs = model.predict(batches, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}


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
        for name, task in prepared.tasks.items():
            encoded = prepared.labels[split][name]
            keep = encoded.mask > 0
            if not keep.any():
                continue
            scores = task.score(encoded.y[keep], outputs[name][keep], encoded.info)
            rows += [{"task": name, "metric": metric, "split": split, "value": value,
                      "n": int(keep.sum())} for metric, value in scores.items()]
    return pd.DataFrame(rows, columns=["task", "metric", "split", "value", "n"])


def metrics_table(metrics: pd.DataFrame) -> str:
    """The final metrics as a small text table: one row per task and metric, one column per split."""
    if metrics.empty:
        return "(no metrics)"
    wide = metrics.pivot_table(index=["task", "metric"], columns="split", values="value",
                               sort=False)
    wide = wide[[s for s in SPLITS if s in wide.columns]]
    return wide.to_string(float_format=lambda v: f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}")
