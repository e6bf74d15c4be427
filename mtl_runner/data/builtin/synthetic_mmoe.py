"""Two regression tasks with a controlled correlation (Ma et al., KDD 2018, §3.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("synthetic_mmoe")
def load_synthetic_mmoe(n: int = 10000, d: int = 100, p: float = 0.5, c: float = 1.0, m: int = 10,
                        alpha: list[float] | None = None, beta: list[float] | None = None,
                        noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """The synthetic benchmark of "Modeling Task Relationships in Multi-task Learning with
    Multi-gate Mixture-of-Experts" (Ma et al., KDD 2018), §3.2.

    Two orthogonal unit vectors u1 ⟂ u2; w1 = c·u1, w2 = c·(p·u1 + √(1−p²)·u2); for x ~ N(0, I_d),
    y_k = w_kᵀx + Σ_{i=1..m} sin(α_i w_kᵀx + β_i) + ε, ε ~ N(0, noise²). The Pearson
    correlation of the two tasks' linear parts is p.

    Args:
        n: rows.
        d: input dimension.
        p: task correlation, in [-1, 1].
        c: scale of the weight vectors.
        m: number of sine terms.
        alpha: the α_i (default: 1, 2, ..., m).
        beta: the β_i (default: 1, 4, ..., m²).
        noise: standard deviation of ε.
        seed: the generator's seed (weights, inputs and noise).

    Columns: x_0 … x_{d-1}, y1, y2.
    """
    if not -1.0 <= p <= 1.0:
        raise ValueError(f"p is a correlation in [-1, 1]. Received: p={p}")
    rng = np.random.default_rng(seed)
    alpha = np.asarray(alpha if alpha is not None else np.arange(1, m + 1), dtype="float64")
    beta = np.asarray(beta if beta is not None else np.arange(1, m + 1) ** 2, dtype="float64")
    u, _ = np.linalg.qr(rng.normal(size=(d, 2)))  # two orthonormal columns
    u1, u2 = u[:, 0], u[:, 1]
    weights = [c * u1, c * (p * u1 + np.sqrt(1.0 - p * p) * u2)]
    x = rng.normal(size=(n, d))
    frame = pd.DataFrame(x.astype("float32"), columns=[f"x_{i}" for i in range(d)])
    for k, w in enumerate(weights, start=1):
        linear = x @ w
        waves = np.sin(np.outer(linear, alpha[:m]) + beta[:m]).sum(axis=1)
        frame[f"y{k}"] = linear + waves + rng.normal(scale=noise, size=n)
    return frame
