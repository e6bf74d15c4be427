"""Loss weighting strategies: how the task losses L_i combine into Σ_i w_i L_i."""

from mtl_runner.weighting.base import WEIGHTINGS, Weighting
from mtl_runner.weighting import static  # noqa: F401  (registers)

__all__ = ["WEIGHTINGS", "Weighting"]
