"""Shared fixtures: tiny generated data and recipe files, a CLI runner."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def make_table(rows: int = 64, seed: int = 0) -> pd.DataFrame:
    """A small table with learnable labels of every task type and a few missing values."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    frame = pd.DataFrame({
        "x1": x1,
        "x2": x2,
        "colour": colour,
        "kind": np.where(x1 > 0.3, "a", np.where(x1 < -0.3, "b", "c")),
        "flag": (x2 > 0).astype(int),
        "target": 3.0 * x1 - 2.0 * x2 + 100.0 + rng.normal(scale=0.1, size=rows),
        "tags": ["p|q" if v > 0 else "q" for v in x1],
    })
    frame.loc[3, "x2"] = np.nan
    frame.loc[5, "flag"] = np.nan
    return frame


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    make_table().to_csv(path, index=False)
    return path


TINY_RECIPE = """\
name: tiny
data:
  source: csv
  path: table.csv
  exclude: [tags]
tasks:
  kind: {type: classification, label: kind}
  flag: {type: binary, label: flag}
  target: {type: regression, label: target}
model:
  trunk: {type: shared_bottom, units: [8]}
  heads: {units: [4]}
training:
  epochs: 2
  batch_size: 16
seed: 0
"""


@pytest.fixture
def write_recipe(tmp_path: Path, table_csv: Path):
    """Writes a recipe next to table.csv and returns its path."""

    def write(text: str = TINY_RECIPE, name: str = "recipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
