"""Random Loss Weighting: fresh random task weights at every step."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("rlw")
class RandomLossWeighting(Weighting):
    """Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test
    for Multi-Task Learning", TMLR 2022.

    At every step draws λ̃ ~ N(0, I_T) and minimises Σ_i λ_i L_i with λ = softmax(λ̃), so the
    weights are positive and sum to 1 (as in the paper; the effective learning rate is that of
    the mean loss). The draw is a stateless function of the seed and the step, so it is
    reproducible and identical on every replica.
    """

    class Config(WeightingConfig):
        name: Literal["rlw"] = "rlw"
        seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the weight draws.")

    def weights(self, losses, step):
        import tensorflow as tf

        seed = tf.stack([tf.constant(self.config.seed, tf.int64), tf.cast(step, tf.int64)])
        return tf.nn.softmax(tf.random.stateless_normal([self.num_tasks], seed=seed))
