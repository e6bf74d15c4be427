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

    and updates with d = (g_0 + (√φ / ‖g_w‖) g_w) / (1 + c²). Up to 10 tasks the inner problem is
    solved exactly (`exact_cagrad_weights`: the stationarity conditions on every support, in
    float64; tested: the objective is within 1e-5 · ‖g_0‖ · mean ‖g_i‖ of a brute-force solve,
    measured below 1e-7). Beyond, it uses the authors' solver (w through a softmax, `iterations`
    SGD steps with momentum 0.5, gradients normalised by their mean norm), which can stop about
    2 % of that scale above the minimum (measured on 3-5 tasks, 20 steps; 1 % after 400).
    c = 0.5 by default; c = 0 is the average gradient. `weight_<task>` logs each task's
    coefficient in d, (1/T + λ w_i) / (1 + c²); heads receive their gradient times it.
    """

    level = "gradient"

    class Config(WeightingConfig):
        name: Literal["cagrad"] = "cagrad"
        c: float = Field(0.5, ge=0.0, description="Radius of the ball around g_0, relative to ‖g_0‖.")
        iterations: int = Field(20, ge=1, le=1000, description=(
            "Steps of the inner solver, used only with more than 10 tasks (fewer are solved exactly)."))
        learning_rate: float = Field(25.0, gt=0.0, description=(
            "Inner solver's step size, used only with more than 10 tasks."))

    def combine(self, grads, losses, step):
        import tensorflow as tf

        coefficients = cagrad_coefficients(grads, self.config.c, self.config.iterations,
                                           self.config.learning_rate)
        return tf.linalg.matvec(grads, coefficients, transpose_a=True), coefficients


EXACT_MAX_TASKS = 10  # 2^T − 1 supports, each a (T+1)×(T+1) solve: 1023 at 10 tasks


def cagrad_coefficients(grads, c: float = 0.5, iterations: int = 20, learning_rate: float = 25.0):
    """The per-task coefficients of CAGrad's update d = Σ_i coefficient_i g_i; G has shape (T, P)."""
    import tensorflow as tf

    count = grads.shape[0]
    if c == 0.0:
        return tf.fill([count], 1.0 / count)
    if count <= EXACT_MAX_TASKS:
        gram = tf.cast(tf.matmul(grads, grads, transpose_b=True), tf.float64)
        gram = gram / tf.maximum(tf.reduce_max(tf.linalg.diag_part(gram)), 1e-300)
        radius = c * tf.sqrt(tf.maximum(tf.reduce_mean(gram), 0.0))     # √φ = c ‖g_0‖
        w = exact_cagrad_weights(gram, radius)
        gw_norm = tf.sqrt(tf.maximum(tf.reduce_sum(w * tf.linalg.matvec(gram, w)), 0.0))
        lam = tf.math.divide_no_nan(radius, gw_norm)
        return tf.cast((1.0 / count + w * lam) / (1.0 + c * c), tf.float32)
    return iterative_cagrad_coefficients(grads, c, iterations, learning_rate)


def exact_cagrad_weights(gram, radius):
    """w on the simplex minimising F(w) = wᵀb + r √(wᵀMw), b = M 1/T, from the Gram matrix M.

    F is convex, and some minimiser has a support S of affinely independent gradients (moving
    along a null direction of the gradients changes neither term). Where g_w ≠ 0, stationarity on
    S reads r M_S w / s − μ 1 = −b_S with s = ‖g_w‖; with u = w / s and t = 1 / s that is the
    linear system [[r M_S, −1], [1ᵀ, 0]] [u; μ] = [−b_S; t], so u = u_0 + t u_1, and uᵀMu = 1 is
    a quadratic in t. Every support's roots t > 0 with w = u / t ≥ 0 are candidates, with the
    min-norm point (where g_w may be 0); the candidate of least F is returned (float64).
    """
    import numpy as np
    import tensorflow as tf

    from mtl_runner.weighting.mgda import min_norm_weights_from_gram

    count = gram.shape[0]
    b = tf.reduce_mean(gram, axis=1)
    supports = tf.constant([[(s >> i) & 1 for i in range(count)] for s in range(1, 2 ** count)],
                           tf.float64)                                     # (S, T)
    inner = (radius * supports[:, :, None] * supports[:, None, :] * gram[None]
             + tf.linalg.diag(1.0 - supports))                             # u_j = 0 off S
    top = tf.concat([inner, -supports[:, :, None]], axis=2)
    bottom = tf.concat([supports, tf.zeros_like(supports[:, :1])], axis=1)[:, None, :]
    inverse = tf.linalg.pinv(tf.concat([top, bottom], axis=1))             # (S, T+1, T+1)
    rhs0 = tf.concat([-b[None, :] * supports, tf.zeros_like(supports[:, :1])], axis=1)
    u0 = tf.linalg.matvec(inverse, rhs0)[:, :count]
    u1 = inverse[:, :count, count]
    quad = lambda x, y: tf.einsum("si,ij,sj->s", x, gram, y)  # noqa: E731
    qa, qb, qc = quad(u1, u1), 2.0 * quad(u0, u1), quad(u0, u0) - 1.0
    root = tf.sqrt(tf.maximum(qb * qb - 4.0 * qa * qc, 0.0))
    candidates = [tf.cast(tf.math.divide_no_nan(-qb + sign * root, 2.0 * qa), tf.float64)
                  for sign in (1.0, -1.0)]
    ws = tf.concat([(u0 + t[:, None] * u1) / tf.where(t > 0, t, 1.0)[:, None]
                    for t in candidates], axis=0)
    valid = tf.concat([t > 0 for t in candidates], axis=0)
    valid = tf.logical_and(valid, tf.reduce_all(ws >= -1e-9, axis=1))
    valid = tf.logical_and(valid, tf.abs(tf.reduce_sum(ws, axis=1) - 1.0) < 1e-6)
    ws = tf.concat([ws, min_norm_weights_from_gram(gram)[None, :]], axis=0)
    valid = tf.concat([valid, [True]], axis=0)
    ws = tf.maximum(ws, 0.0)
    ws = ws / tf.reduce_sum(ws, axis=1, keepdims=True)
    values = tf.linalg.matvec(ws, b) + radius * tf.sqrt(tf.maximum(
        tf.einsum("si,ij,sj->s", ws, gram, ws), 0.0))
    return tf.gather(ws, tf.argmin(tf.where(valid, values, np.inf)))


def iterative_cagrad_coefficients(grads, c: float = 0.5, iterations: int = 20,
                                  learning_rate: float = 25.0):
    """CAGrad's coefficients by the authors' solver (softmax weights, SGD with momentum)."""
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
