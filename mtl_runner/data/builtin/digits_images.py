"""The optical digits as 8×8 grey images (an `image` column of arrays), for image recipes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("digits_images")
def load_digits_images(n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Alpaydin & Kaynak (1998), UCI "Optical Recognition of Handwritten Digits", via scikit-learn.

    Columns: `image` (8×8 uint8 arrays, 0–255; resized to `data.image.size` when read),
    `digit` (0–9), `parity` (even/odd) and `large` (digit ≥ 5) for multi-task recipes.

    Args:
        n: keep a random subset of n images (a small labelled target set), or all 1,797.
        seed: which subset.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)
    digits = bunch.target
    frame = pd.DataFrame({
        "image": list(pixels),
        "digit": digits,
        "parity": np.where(digits % 2 == 0, "even", "odd"),
        "large": (digits >= 5).astype(int),
    })
    if n is not None and n < len(frame):
        rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=int(n), replace=False))
        frame = frame.iloc[rows].reset_index(drop=True)
    return frame
