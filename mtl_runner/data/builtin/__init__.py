"""Built-in datasets that ship with installed packages, so nothing is downloaded."""

from mtl_runner.data.builtin.base import DATASETS
from mtl_runner.data.builtin import digits, digits_images, penguins, shapes  # noqa: F401  (registers)

__all__ = ["DATASETS"]
