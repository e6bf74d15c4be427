"""Static weighting: the fixed per-task weights written in the recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from mtl_runner.weighting.base import WEIGHTINGS, Weighting


@WEIGHTINGS.register("static")
class Static(Weighting):
    """Minimises Σ_i w_i L_i with each task's `weight` from the recipe (default 1.0).

    The plain linear scalarisation of multi-task learning (Caruana, 1997); the baseline that
    every adaptive strategy is compared against.
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        name: Literal["static"] = "static"

    def loss_weights(self) -> dict[str, float]:
        return dict(self.task_weights)
