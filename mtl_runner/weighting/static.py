"""Static weighting: the fixed per-task weights written in the recipe."""

from __future__ import annotations

from typing import Literal

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("static")
class Static(Weighting):
    """Minimises Σ_i w_i L_i with each task's `weight` from the recipe (default 1.0).

    The plain linear scalarisation of multi-task learning (Caruana, 1997); the baseline that
    every adaptive strategy is compared against. The trainer already multiplies each L_i by the
    task's `weight`, so the strategy's own weights are all 1 and `weight_<task>` logs the recipe
    weight.
    """

    class Config(WeightingConfig):
        name: Literal["static"] = "static"

    def weights(self, losses, step):
        import tensorflow as tf

        return tf.ones([self.num_tasks], tf.float32)
