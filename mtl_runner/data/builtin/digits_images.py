"""The optical digits as 8×8 grey images (an `image` column of arrays), for image recipes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("digits_images")
def load_digits_images(n: int | None = None, offset: int = 0, seed: int = 0) -> pd.DataFrame:
    """Alpaydin & Kaynak (1998), UCI "Optical Recognition of Handwritten Digits", via scikit-learn.

    Columns: `image` (8×8 uint8 arrays, 0–255; resized to `data.image.size` when read),
    `digit` (0–9), `parity` (even/odd) and `large` (digit ≥ 5) for multi-task recipes.

    Args:
        n: keep n images (a small labelled target set), or all 1,797.
        offset: skip this many images first, so that two recipes can take disjoint subsets
            (a source set for pre-training, a target set for fine-tuning).
        seed: the order the subsets are taken from (a fixed permutation per seed).
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
    if n is not None or offset:
        order = np.random.default_rng(seed).permutation(len(frame))
        rows = np.sort(order[offset: None if n is None else offset + n])
        frame = frame.iloc[rows].reset_index(drop=True)
    return frame
