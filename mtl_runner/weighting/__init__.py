"""Loss weighting strategies: how the task losses L_i combine into one update."""

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig
from mtl_runner.weighting import static  # noqa: F401  (registers)
from mtl_runner.weighting import uncertainty  # noqa: F401
from mtl_runner.weighting import dwa  # noqa: F401
from mtl_runner.weighting import gradnorm  # noqa: F401
from mtl_runner.weighting import pcgrad  # noqa: F401
from mtl_runner.weighting import mgda  # noqa: F401
from mtl_runner.weighting import cagrad  # noqa: F401
from mtl_runner.weighting import rlw  # noqa: F401

__all__ = ["WEIGHTINGS", "Weighting", "WeightingConfig"]
