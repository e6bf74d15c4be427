"""CAGrad: the update that best improves the worst task near the average gradient."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("cagrad")
class CAGrad(Weighting):
    """Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
    NeurIPS 2021.

    With g_0 the average gradient and g_w = Σ_i w_i g_i, solves on the simplex

        min_w  g_wᵀ g_0 + √φ ‖g_w‖,   φ = c² ‖g_0‖²,

    and updates with d = (g_0 + (√φ / ‖g_w‖) g_w) / (1 + c²), as in the authors' code (w through
    a softmax, 20 SGD steps with momentum 0.5, gradients normalised by their mean norm while
    solving). c = 0.5 by default; c = 0 is the average gradient. `weight_<task>` logs each
    task's coefficient in d, (1/T + λ w_i) / (1 + c²); heads receive their gradient times it.
    """

    level = "gradient"

    class Config(WeightingConfig):
        name: Literal["cagrad"] = "cagrad"
        c: float = Field(0.5, ge=0.0, description="Radius of the ball around g_0, relative to ‖g_0‖.")
        iterations: int = Field(20, ge=1, le=1000, description="Steps of the inner solver.")
        learning_rate: float = Field(25.0, gt=0.0, description="Inner solver's step size.")

    def combine(self, grads, losses, step):
        import tensorflow as tf

        coefficients = cagrad_coefficients(grads, self.config.c, self.config.iterations,
                                           self.config.learning_rate)
        return tf.linalg.matvec(grads, coefficients, transpose_a=True), coefficients


def cagrad_coefficients(grads, c: float = 0.5, iterations: int = 20, learning_rate: float = 25.0):
    """The per-task coefficients of CAGrad's update d = Σ_i coefficient_i g_i; G has shape (T, P)."""
    import tensorflow as tf

    count = grads.shape[0]
    gram = tf.matmul(grads, grads, transpose_b=True)
    scale = tf.reduce_mean(tf.sqrt(tf.linalg.diag_part(gram) + 1e-4))
    gram = gram / tf.square(scale)
    gram_mean = tf.reduce_mean(gram, axis=1)              # G g_0 per task
    radius = tf.sqrt(tf.reduce_mean(gram_mean) + 1e-4) * c  # √φ on the normalised scale

    def objective(logits):
        w = tf.nn.softmax(logits)
        return tf.reduce_sum(w * gram_mean) + radius * tf.sqrt(
            tf.reduce_sum(w * tf.linalg.matvec(gram, w)) + 1e-4)

    def step(i, logits, velocity, best, best_value):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = objective(logits)
        velocity = 0.5 * velocity + tape.gradient(value, logits)
        logits = logits - learning_rate * velocity
        value = objective(logits)
        better = value < best_value
        return (i + 1, logits, velocity, tf.where(better, logits, best),
                tf.where(better, value, best_value))

    start = tf.zeros([count], tf.float32)
    *_, best, _ = tf.while_loop(lambda i, *_: i < iterations, step,
                                (tf.constant(0), start, start, start, objective(start)))
    w = tf.stop_gradient(tf.nn.softmax(best))
    gw_norm = tf.sqrt(tf.reduce_sum(w * tf.linalg.matvec(gram, w)) + 1e-4)
    lam = radius / (gw_norm + 1e-4)
    return (1.0 / count + w * lam) / (1.0 + c * c)
