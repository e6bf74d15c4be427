"""Trunks: the shared parameters θ of a multi-task model. One module per trunk."""

from mtl_runner.models.trunks.base import TRUNKS, Trunk
from mtl_runner.models.trunks import shared_bottom  # noqa: F401  (registers)
from mtl_runner.models.trunks import mmoe  # noqa: F401  (registers)
from mtl_runner.models.trunks import cgc  # noqa: F401  (registers)
from mtl_runner.models.trunks import ple  # noqa: F401  (registers)
from mtl_runner.models.trunks import cross_stitch  # noqa: F401  (registers)

__all__ = ["TRUNKS", "Trunk"]
