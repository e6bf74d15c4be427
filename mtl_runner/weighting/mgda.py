"""MGDA: the minimum-norm point in the convex hull of the task gradients."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("mgda")
class MGDA(Weighting):
    """Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.

    Finds the task weights α on the simplex that minimise ‖Σ_i α_i g_i‖² (the multiple-gradient
    descent direction; a common descent direction for every task, or 0 at a Pareto-stationary
    point) with the Frank-Wolfe solver of the paper, working on the Gram matrix M = G Gᵀ:
    at each iteration t = argmin_i (M α)_i and an exact line search between α and e_t. For two
    tasks this is the closed form α_1 = clip(((g_2 − g_1) · g_2) / ‖g_1 − g_2‖², 0, 1).
    The gradients are taken on all shared parameters (not the MGDA-UB representation bound).
    `normalize` rescales each g_i first, as in the paper's code: `l2` by ‖g_i‖, `loss` by L_i,
    `loss+` by L_i·‖g_i‖. Tasks with a zero gradient in a batch (no labelled examples) are left
    out. The shared variables receive Σ_i α_i g_i; heads receive α_i ∇L_i.
    """

    level = "gradient"

    class Config(WeightingConfig):
        name: Literal["mgda"] = "mgda"
        normalize: Literal["none", "l2", "loss", "loss+"] = Field(
            "none", description="How each task gradient is rescaled before the min-norm solve.")
        iterations: int = Field(50, ge=1, le=1000, description="Frank-Wolfe iterations.")

    def combine(self, grads, losses, step):
        import tensorflow as tf

        norms = tf.norm(grads, axis=1)
        scales = {"none": tf.ones_like(losses), "l2": norms, "loss": losses,
                  "loss+": losses * norms}[self.config.normalize]
        scaled = grads / tf.maximum(scales, 1e-12)[:, None]
        alpha = min_norm_weights(scaled, self.config.iterations)
        return tf.reduce_sum(alpha[:, None] * scaled, axis=0), alpha


def min_norm_weights(grads, iterations: int = 50):
    """α on the simplex minimising ‖αᵀG‖ (Frank-Wolfe on the Gram matrix); G has shape (T, P).

    Rows that are all zero get α = 0 unless every row is zero.
    """
    import tensorflow as tf

    gram = tf.matmul(grads, grads, transpose_b=True)
    count = grads.shape[0]
    active = tf.cast(tf.linalg.diag_part(gram) > 0.0, tf.float32)
    active = tf.where(tf.reduce_sum(active) > 0, active, tf.ones_like(active))
    alpha = active / tf.reduce_sum(active)
    blocked = (1.0 - active) * 1e30  # never step toward a task without a gradient
    diagonal = tf.linalg.diag_part(gram)

    def step(_, alpha):
        product = tf.linalg.matvec(gram, alpha)
        t = tf.argmin(product + blocked)
        gamma = line_search(tf.reduce_sum(alpha * product), tf.gather(product, t),
                            tf.gather(diagonal, t))
        return _ + 1, gamma * alpha + (1.0 - gamma) * tf.one_hot(t, count, dtype=tf.float32)

    _, alpha = tf.while_loop(lambda i, _: i < iterations, step, (tf.constant(0), alpha))
    return alpha


def line_search(v1v1, v1v2, v2v2):
    """γ in [0, 1] minimising ‖γ v1 + (1 − γ) v2‖², from the three dot products."""
    import tensorflow as tf

    denominator = v1v1 + v2v2 - 2.0 * v1v2
    gamma = tf.math.divide_no_nan(v2v2 - v1v2, denominator)
    return tf.clip_by_value(tf.where(denominator > 1e-20, gamma, 1.0), 0.0, 1.0)
