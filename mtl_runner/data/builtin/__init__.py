"""Built-in datasets that ship with installed packages, so nothing is downloaded."""

from mtl_runner.data.builtin.base import DATASETS
from mtl_runner.data.builtin import (  # noqa: F401  (registers)
    digits,
    digits_images,
    penguins,
    shapes,
    synthetic_gradnorm,
    synthetic_mmoe,
)

__all__ = ["DATASETS"]
