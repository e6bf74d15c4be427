"""Optical digits: 1,797 8×8 grey-level images of handwritten digits, from scikit-learn."""

from __future__ import annotations

import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("digits")
def load_digits() -> pd.DataFrame:
    """Alpaydin & Kaynak (1998), UCI "Optical Recognition of Handwritten Digits".

    Columns: pixel_0 … pixel_63 (0–16) and `digit` (0–9). Read from the copy scikit-learn
    ships: no download.
    """
    from sklearn.datasets import load_digits as load

    bunch = load()
    frame = pd.DataFrame(bunch.data.astype("float32"),
                         columns=[f"pixel_{i}" for i in range(bunch.data.shape[1])])
    frame["digit"] = bunch.target
    return frame
