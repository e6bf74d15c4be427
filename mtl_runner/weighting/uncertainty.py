"""Uncertainty weighting: each task's loss scaled by a learned homoscedastic noise."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.tasks import TASK_TYPES
from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig



@WEIGHTINGS.register("uncertainty")
class Uncertainty(Weighting):
    """Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
    Geometry and Semantics", CVPR 2018.

    Learns one log-variance s_i = log σ_i² per task, trained with the network, and minimises

        L = Σ_i c_i · exp(−s_i) · L_i + s_i / 2

    with c_i = ½ for regression tasks (Gaussian likelihood: L_i/(2σ²) + log σ) and c_i = 1 for
    classification, binary and multi-label tasks (L_i/σ² + log σ). At the optimum of a regression
    task exp(s_i) = L_i, so a noisier task ends with a larger s_i and a smaller weight.
    `weight_<task>` logs c_i · exp(−s_i).
    """

    class Config(WeightingConfig):
        name: Literal["uncertainty"] = "uncertainty"
        initial_log_variance: float = Field(0.0, ge=-10.0, le=10.0, description=(
            "Starting value of every s_i = log σ_i²."))

    def build(self, model, task_types: dict[str, str]) -> None:
        import keras

        super().build(model, task_types)
        self.log_variance = model.add_weight(
            shape=(self.num_tasks,), name="log_variance", trainable=True,
            initializer=keras.initializers.Constant(self.config.initial_log_variance))
        # c_i of Kendall et al.: a Gaussian likelihood gives 1/(2σ²), a softmax/sigmoid one 1/σ²
        self.forms = [0.5 if TASK_TYPES.get(task_types[t]).gaussian_likelihood else 1.0
                      for t in self.task_names]

    def weights(self, losses, step):
        import tensorflow as tf

        return tf.constant(self.forms, tf.float32) * tf.exp(-tf.convert_to_tensor(self.log_variance))

    def regularizer(self):
        import tensorflow as tf

        return 0.5 * tf.reduce_sum(tf.convert_to_tensor(self.log_variance))
