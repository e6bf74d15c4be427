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
    point), working on the Gram matrix M = G Gᵀ. Up to `EXACT_MAX_TASKS` tasks the solve is exact
    (`min_norm_weights`: the KKT system on every support, in float64; tested: the norm is within
    1e-5 · max ‖g_i‖ of a brute-force solve, measured below 1e-7). Beyond that it falls back to
    the Frank-Wolfe solver of the paper (at each iteration t = argmin_i (M α)_i and an exact line
    search between α and e_t), whose norm can stay well above the minimum after 50 iterations
    (up to 20 % of max ‖g_i‖ was measured on 3-5 tasks). For two tasks this is
    the closed form α_1 = clip(((g_2 − g_1) · g_2) / ‖g_1 − g_2‖², 0, 1).
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
        iterations: int = Field(50, ge=1, le=1000, description=(
            "Frank-Wolfe iterations, used only with more than 10 tasks (fewer are solved exactly)."))

    def combine(self, grads, losses, step):
        import tensorflow as tf

        norms = tf.norm(grads, axis=1)
        scales = {"none": tf.ones_like(losses), "l2": norms, "loss": losses,
                  "loss+": losses * norms}[self.config.normalize]
        scaled = grads / tf.maximum(scales, 1e-12)[:, None]
        alpha = min_norm_weights(scaled, self.config.iterations)
        return tf.reduce_sum(alpha[:, None] * scaled, axis=0), alpha


EXACT_MAX_TASKS = 10  # 2^T − 1 supports, each a (T+1)×(T+1) solve: 1023 at 10 tasks


def min_norm_weights(grads, iterations: int = 50):
    """α on the simplex minimising ‖αᵀG‖; G has shape (T, P).

    Exact for up to `EXACT_MAX_TASKS` tasks (`exact_min_norm_weights`), Frank-Wolfe with
    `iterations` steps beyond. Rows that are all zero get α = 0 unless every row is zero.
    """
    if grads.shape[0] <= EXACT_MAX_TASKS:
        return exact_min_norm_weights(grads)
    return frank_wolfe_min_norm_weights(grads, iterations)


def exact_min_norm_weights(grads):
    """The min-norm point of the convex hull of the rows of G, solved exactly.

    The minimum lies in the hull of an affinely independent subset S of the rows, where it is
    the min-norm point of their affine hull: the solution of the KKT system
    [[M_SS, 1], [1ᵀ, 0]] [α_S; −λ] = [0; 1], which is nonsingular for such an S. Every support S
    is solved (a pseudo-inverse, so degenerate supports give some point or are rejected), the
    candidates outside the simplex are dropped and the one of least norm is kept. Float64 on the
    Gram matrix scaled to a unit diagonal maximum.
    """
    import tensorflow as tf

    gram = tf.cast(tf.matmul(grads, grads, transpose_b=True), tf.float64)
    return tf.cast(min_norm_weights_from_gram(gram), tf.float32)


def min_norm_weights_from_gram(gram):
    """`exact_min_norm_weights` from the Gram matrix M = G Gᵀ (float64 in, float64 out)."""
    import numpy as np
    import tensorflow as tf

    count = gram.shape[0]
    diagonal = tf.linalg.diag_part(gram)
    gram = gram / tf.maximum(tf.reduce_max(diagonal), 1e-300)
    active = diagonal > 0.0
    any_active = tf.reduce_any(active)
    supports = tf.constant([[(s >> i) & 1 for i in range(count)] for s in range(1, 2 ** count)],
                           tf.float64)                                     # (S, T)
    inner = (supports[:, :, None] * supports[:, None, :] * gram[None]
             + tf.linalg.diag(1.0 - supports))                             # α_j = 0 off S
    top = tf.concat([inner, supports[:, :, None]], axis=2)
    bottom = tf.concat([supports, tf.zeros_like(supports[:, :1])], axis=1)[:, None, :]
    kkt = tf.concat([top, bottom], axis=1)                                 # (S, T+1, T+1)
    rhs = tf.constant(np.eye(count + 1)[count], tf.float64)
    alphas = tf.linalg.matvec(tf.linalg.pinv(kkt), rhs)[:, :count]
    norms = tf.einsum("si,ij,sj->s", alphas, gram, alphas)
    inside = tf.logical_and(tf.reduce_all(alphas >= -1e-9, axis=1),
                            tf.abs(tf.reduce_sum(alphas, axis=1) - 1.0) < 1e-6)
    # never a task without a gradient, unless no task has one
    usable = tf.reduce_all(tf.logical_or(supports == 0.0, active[None, :]), axis=1)
    inside = tf.logical_and(inside, tf.logical_or(usable, tf.logical_not(any_active)))
    best = tf.gather(alphas, tf.argmin(tf.where(inside, norms, np.inf)))
    best = tf.maximum(best, 0.0)
    best = best / tf.reduce_sum(best)
    uniform = tf.fill([count], tf.constant(1.0 / count, tf.float64))
    return tf.where(any_active, best, uniform)


def frank_wolfe_min_norm_weights(grads, iterations: int = 50):
    """α on the simplex minimising ‖αᵀG‖ by Frank-Wolfe on the Gram matrix (approximate)."""
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
