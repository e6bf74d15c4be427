"""PCGrad: project each task gradient off the gradients it conflicts with."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("pcgrad")
class PCGrad(Weighting):
    """Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task Learning",
    NeurIPS 2020.

    For every task i, in a random order of the other tasks j, whenever g_i^PC · g_j < 0:

        g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j

    and the shared variables receive Σ_i g_i^PC. Heads receive their own task's gradient, so the
    logged weights are all 1. The order is a stateless draw from the seed and the step.
    """

    level = "gradient"

    class Config(WeightingConfig):
        name: Literal["pcgrad"] = "pcgrad"
        seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the random projection order.")

    def combine(self, grads, losses, step):
        import tensorflow as tf

        projected = project_conflicting(grads, self.config.seed, step)
        return tf.reduce_sum(projected, axis=0), tf.ones([self.num_tasks], tf.float32)


def project_conflicting(grads, seed: int = 0, step=0):
    """PCGrad's projected task gradients, shape (T, P), from the gradients G of shape (T, P)."""
    import tensorflow as tf

    count = grads.shape[0]
    squared = tf.reduce_sum(grads * grads, axis=1)
    projected = []
    for i in range(count):
        others = tf.constant([j for j in range(count) if j != i], tf.int32)
        draw = tf.random.stateless_uniform(
            [count - 1], seed=tf.stack([tf.constant(seed + i, tf.int64), tf.cast(step, tf.int64)]))
        order = tf.gather(others, tf.argsort(draw))
        g = grads[i]
        for k in range(count - 1):
            j = order[k]
            other = tf.gather(grads, j)
            dot = tf.reduce_sum(g * other)
            scale = tf.where(dot < 0.0, dot / tf.maximum(tf.gather(squared, j), 1e-20), 0.0)
            g = g - scale * other
        projected.append(g)
    return tf.stack(projected)
