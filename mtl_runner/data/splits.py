"""Deterministic train / validation / test splits, stratified for classification."""

from __future__ import annotations

import numpy as np
import pandas as pd


def split_indices(n: int, validation: float, test: float, seed: int,
                  strata: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Row indices of each split, the same for the same arguments on every machine.

    Args:
        n: number of rows.
        validation: fraction of rows for validation.
        test: fraction of rows for test.
        seed: seed of the permutation.
        strata: one label per row to stratify on (missing labels form their own stratum);
            ignored when some stratum is too small to appear in every split.

    Returns:
        {"train": ..., "validation": ..., "test": ...}, each a sorted array of row indices.
    """
    from sklearn.model_selection import train_test_split

    rows = np.arange(n)
    parts = {"train": rows, "validation": rows[:0], "test": rows[:0]}

    def cut(pool: np.ndarray, fraction: float, labels: np.ndarray | None, offset: int):
        if fraction <= 0 or len(pool) < 2:
            return pool, pool[:0]
        size = max(1, int(round(fraction * len(pool))))
        if size >= len(pool):
            return pool, pool[:0]
        stratify = labels[pool] if labels is not None else None
        if stratify is not None:
            counts = pd.Series(stratify).value_counts()
            classes = len(counts)
            if counts.min() < 2 or size < classes or len(pool) - size < classes:
                stratify = None
        keep, taken = train_test_split(pool, test_size=size, random_state=seed + offset,
                                       stratify=stratify)
        return keep, taken

    strata = None if strata is None else np.asarray(strata, dtype=object)
    rest, parts["test"] = cut(rows, test, strata, 0)
    remaining_fraction = validation / (1.0 - test) if test < 1 else 0.0
    parts["train"], parts["validation"] = cut(rest, remaining_fraction, strata, 1)
    return {name: np.sort(indices) for name, indices in parts.items()}
