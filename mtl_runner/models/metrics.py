"""Keras metrics that report regression errors in the data's units.

Regression targets are standardized for training (y_std = (y - μ) / σ); an error measured on
standardized values times σ is the error in the original units.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl")
class ScaledMeanAbsoluteError(keras.metrics.MeanMetricWrapper):
    """Mean absolute error of standardized targets, multiplied back by the target scale σ.

    Args:
        scale: σ per output column.
    """

    def __init__(self, scale, name="mae", dtype=None):
        self.scale = [float(s) for s in scale]
        super().__init__(fn=self._error, name=name, dtype=dtype)

    def _error(self, y_true, y_pred):
        scale = ops.convert_to_tensor(self.scale, dtype="float32")
        return ops.mean(ops.abs(y_pred - y_true) * scale, axis=-1)

    def get_config(self):
        return {"scale": self.scale, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="mtl")
class ScaledRootMeanSquaredError(keras.metrics.Metric):
    """Root mean squared error of standardized targets, in the original units.

    Args:
        scale: σ per output column.
    """

    def __init__(self, scale, name="rmse", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.scale = [float(s) for s in scale]
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        scale = ops.convert_to_tensor(self.scale, dtype="float32")
        squared = ops.mean(ops.square((ops.cast(y_pred, "float32") - ops.cast(y_true, "float32"))
                                      * scale), axis=-1)
        weight = ops.ones_like(squared) if sample_weight is None else \
            ops.reshape(ops.cast(sample_weight, "float32"), ops.shape(squared))
        self.total.assign_add(ops.sum(squared * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.sqrt(ops.divide_no_nan(self.total, self.count))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"scale": self.scale, "name": self.name, "dtype": self.dtype}
