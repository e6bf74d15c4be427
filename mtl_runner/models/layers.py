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


@keras.saving.register_keras_serializable(package="mtl")
class PreprocessInput(keras.layers.Layer):
    """A backbone's `preprocess_input`, as a layer inside the model (RGB in [0, 255]).

    Modes follow `keras.applications.imagenet_utils.preprocess_input`: "caffe" (RGB → BGR,
    minus the ImageNet channel means), "tf" (to [-1, 1]), "torch" (to [0, 1], then
    standardized per channel), "none" (the application normalizes by itself).

    Args:
        mode: one of "caffe", "tf", "torch", "none".
    """

    MEANS = {"caffe": (103.939, 116.779, 123.68), "torch": (0.485, 0.456, 0.406)}
    STDS = {"torch": (0.229, 0.224, 0.225)}

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("caffe", "tf", "torch", "none"):
            raise ValueError(f"mode must be caffe, tf, torch or none. Received: mode={mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(self.MEANS["caffe"])
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            return (x / 255.0 - ops.convert_to_tensor(self.MEANS["torch"])) / ops.convert_to_tensor(
                self.STDS["torch"])
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
