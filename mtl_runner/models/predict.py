"""Running a built model on inputs held in memory: training's final scoring and `mtl predict`
and `mtl evaluate` all get a model's outputs here."""

from __future__ import annotations

import numpy as np


def predict(model, x: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """Model outputs by task name, as numpy arrays (empty when `x` has no rows)."""
    if not x or len(next(iter(x.values()))) == 0:
        return {}
    import tensorflow as tf

    # string inputs (categorical columns) go through tf.data: Keras' numpy adapter refuses them
    batches = tf.data.Dataset.from_tensor_slices(x).batch(max(batch_size, 256))
    outputs = model.predict(batches, verbose=0)
    return {name: np.asarray(value) for name, value in outputs.items()}
