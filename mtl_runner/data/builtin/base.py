"""The built-in dataset registry: a name → a function returning a pandas DataFrame."""

from __future__ import annotations

from typing import Callable

import pandas as pd

from mtl_runner.registry import Registry

DATASETS: Registry[Callable[[], pd.DataFrame]] = Registry("builtin dataset")
