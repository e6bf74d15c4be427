"""Small Keras layers used inside every model, registered so that saved models reload."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtl")
class ImputeMissing(keras.layers.Layer):
    """Replaces NaN in each column by a fixed value (the train mean).

    Args:
        fill_values: one value per column.

    Example:
        >>> ImputeMissing([1.0, 2.0])(np.array([[np.nan, 5.0]], "float32"))  # [[1., 5.]]
    """

    def __init__(self, fill_values, **kwargs):
        super().__init__(**kwargs)
        self.fill_values = [float(v) for v in fill_values]

    def call(self, inputs):
        fill = ops.convert_to_tensor(self.fill_values, dtype=inputs.dtype)
        return ops.where(ops.isnan(inputs), fill, inputs)

    def get_config(self):
        return {**super().get_config(), "fill_values": self.fill_values}


@keras.saving.register_keras_serializable(package="mtl")
class MissingIndicator(keras.layers.Layer):
    """1.0 where the selected columns are NaN, else 0.0.

    Args:
        columns: indices of the columns that get an indicator.
    """

    def __init__(self, columns, **kwargs):
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]

    def call(self, inputs):
        selected = ops.take(inputs, self.columns, axis=-1)
        return ops.cast(ops.isnan(selected), "float32")

    def get_config(self):
        return {**super().get_config(), "columns": self.columns}
