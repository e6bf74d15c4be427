"""Dynamic Weight Average: weights follow how fast each task's loss is falling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("dwa")
class DynamicWeightAverage(Weighting):
    """Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.

    With L_i(t) the mean training loss of task i in epoch t,

        r_i(t−1) = L_i(t−1) / L_i(t−2),    w_i(t) = T · exp(r_i(t−1)/τ) / Σ_j exp(r_j(t−1)/τ),

    so the weights sum to the number of tasks T; a task whose loss falls slowly gets more weight.
    τ = 2 as in the paper. The first two epochs use w_i = 1.
    """

    class Config(WeightingConfig):
        name: Literal["dwa"] = "dwa"
        temperature: float = Field(2.0, gt=0.0, description="τ: higher values flatten the weights.")

    def build(self, model, task_types: dict[str, str]) -> None:
        super().build(model, task_types)
        # rows: L(t−1), L(t−2); epochs_seen counts finished epochs (capped at 2)
        self.history = model.add_weight(shape=(2, self.num_tasks), initializer="ones",
                                        trainable=False, name="dwa_loss_history")
        self.epochs_seen = model.add_weight(shape=(), initializer="zeros", trainable=False,
                                            name="dwa_epochs_seen")

    def weights(self, losses, step):
        import tensorflow as tf

        history = tf.convert_to_tensor(self.history)
        return tf.cond(tf.convert_to_tensor(self.epochs_seen) >= 2.0,
                       lambda: dwa_weights(history[0], history[1], self.config.temperature),
                       lambda: tf.ones([self.num_tasks], tf.float32))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        import numpy as np

        latest = np.array([float(logs.get(f"{t}_loss", np.nan)) for t in self.task_names])
        if not np.all(np.isfinite(latest) & (latest > 0)):
            return  # no usable losses this epoch: keep the previous weights
        previous = np.asarray(self.history.numpy())[0]
        self.history.assign(np.stack([latest, previous]).astype("float32"))
        self.epochs_seen.assign(min(float(self.epochs_seen.numpy()) + 1.0, 2.0))


def dwa_weights(latest, previous, temperature: float):
    """w_i = T · softmax(r / τ)_i with r_i = latest_i / previous_i (tensors of shape (T,))."""
    import tensorflow as tf

    ratio = latest / tf.maximum(previous, 1e-12)
    count = tf.cast(tf.size(latest), tf.float32)
    return count * tf.nn.softmax(ratio / temperature)
