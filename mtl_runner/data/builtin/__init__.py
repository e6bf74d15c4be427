"""Built-in datasets that ship with installed packages, so nothing is downloaded."""

from mtl_runner.data.builtin.base import DATASETS
from mtl_runner.data.builtin import digits, penguins  # noqa: F401  (registers)

__all__ = ["DATASETS"]
