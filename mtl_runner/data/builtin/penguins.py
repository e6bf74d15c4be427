"""Palmer penguins: 344 penguins of 3 species, from the `palmerpenguins` package (CC0)."""

from __future__ import annotations

import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("penguins")
def load_penguins() -> pd.DataFrame:
    """Gorman, Williams & Fraser (2014), PLoS ONE 9(3): e90081; the `palmerpenguins` package.

    Columns: species, island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g,
    sex (11 missing), year. Read from the file the package ships: no download.
    """
    from palmerpenguins import load_penguins as load

    return load()
