"""Layers that mix representations in multi-task trunks: gated sums and cross-stitch units.

The layers are registered with Keras so that a saved model reloads without custom objects.
This module imports Keras at import time; trunks import it only inside `build`, so that
`mtl --help` and `mtl validate` never load TensorFlow.
"""

from __future__ import annotations

import keras
from keras import ops


def dense_stack(x, units: list[int], activation: str, dropout: float, prefix: str):
    """A stack of Dense layers (an expert, or one cross-stitch column's layer), named `prefix_*`.

    Args:
        x: the input tensor, `(batch, features)`.
        units: the width of each Dense layer.
        activation: the activation after each Dense layer.
        dropout: the dropout rate after each Dense layer (0 for none).
        prefix: the start of every layer name, unique within the model.

    Returns:
        The output tensor, `(batch, units[-1])`.
    """
    for i, width in enumerate(units):
        x = keras.layers.Dense(width, activation=activation, name=f"{prefix}_dense_{i}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout_{i}")(x)
    return x


def expert_gate(x, num_experts: int, name: str):
    """A softmax gate over `num_experts` experts: `g(x) = softmax(W_g x)`, a row per example.

    Args:
        x: the gate's input, `(batch, features)`.
        num_experts: how many experts the gate weighs.
        name: the gate layer's name.

    Returns:
        The gate weights, `(batch, num_experts)`, non-negative and summing to 1 in each row
        (computed in float32 so that they do so under mixed precision too).
    """
    return keras.layers.Dense(num_experts, activation="softmax", dtype="float32", name=name)(x)


@keras.saving.register_keras_serializable(package="mtl")
class GatedSum(keras.layers.Layer):
    """The gate-weighted sum of expert outputs: `y = Σ_i g_i(x) f_i(x)`.

    Called as `GatedSum()([gate, expert_1, ..., expert_n])`, where `gate` is `(batch, n)`
    (each row a probability vector, as from `expert_gate`) and every expert is
    `(batch, d)`; returns `(batch, d)`. The layer has no weights.

    Example:
        >>> gate = np.array([[0.25, 0.75]], "float32")
        >>> GatedSum()([gate, np.ones((1, 3), "float32"), np.zeros((1, 3), "float32")])
        # [[0.25, 0.25, 0.25]]
    """

    def call(self, inputs):
        gate, *experts = inputs
        if len(experts) != gate.shape[-1]:
            raise ValueError(f"GatedSum needs one expert per gate output. Received "
                             f"{len(experts)} experts and a gate of width {gate.shape[-1]}.")
        stacked = ops.stack(experts, axis=1)  # (batch, n, d)
        gate = ops.cast(gate, stacked.dtype)
        return ops.einsum("bn,bnd->bd", gate, stacked)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])


@keras.saving.register_keras_serializable(package="mtl")
class CrossStitch(keras.layers.Layer):
    """A cross-stitch unit (Misra et al., CVPR 2016): learned linear mixing of T columns.

    For columns `x_1..x_T` of equal width, the unit returns `x̃_i = Σ_j α_ij x_j`, with `α`
    a learned `T×T` matrix. It starts near the identity: `α_ii = self_weight` and
    `α_ij = (1 − self_weight) / (T − 1)` for `i ≠ j`, so each column begins mostly as its own
    and every row of `α` sums to 1. With `self_weight=1` the columns start independent.

    Args:
        self_weight: the initial diagonal of `α`, in [0, 1].

    Example:
        >>> a, b = np.ones((2, 4), "float32"), np.zeros((2, 4), "float32")
        >>> CrossStitch(self_weight=0.9)([a, b])  # [0.9 * a + 0.1 * b, 0.1 * a + 0.9 * b]
    """

    def __init__(self, self_weight: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= self_weight <= 1.0:
            raise ValueError(f"CrossStitch needs 0 <= self_weight <= 1. "
                             f"Received self_weight={self_weight}")
        self.self_weight = float(self_weight)

    def build(self, input_shape):
        widths = {tuple(shape[1:]) for shape in input_shape}
        if len(widths) != 1:
            raise ValueError(f"CrossStitch mixes columns of equal shape. Received shapes "
                             f"{[tuple(shape) for shape in input_shape]}.")
        self.num_columns = len(input_shape)
        self.alpha = self.add_weight(shape=(self.num_columns, self.num_columns),
                                     initializer=keras.initializers.Constant(0.0), name="alpha")
        self.alpha.assign(self.initial_alpha(self.num_columns, self.self_weight))

    @staticmethod
    def initial_alpha(num_columns: int, self_weight: float):
        """The starting matrix: `self_weight` on the diagonal, the rest spread evenly."""
        if num_columns == 1:
            return ops.ones((1, 1))
        off = (1.0 - self_weight) / (num_columns - 1)
        eye = ops.eye(num_columns)
        return eye * self_weight + (1.0 - eye) * off

    def call(self, inputs):
        stacked = ops.stack(inputs, axis=1)  # (batch, T, d)
        alpha = ops.cast(self.alpha, stacked.dtype)
        mixed = ops.einsum("ij,bj...->bi...", alpha, stacked)
        return [mixed[:, i] for i in range(self.num_columns)]

    def compute_output_shape(self, input_shape):
        return [tuple(shape) for shape in input_shape]

    def get_config(self):
        return {**super().get_config(), "self_weight": self.self_weight}
