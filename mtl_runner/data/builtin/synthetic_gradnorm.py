"""Regression tasks that share structure but differ in scale (Chen et al., ICML 2018, §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.data.builtin.base import DATASETS


@DATASETS.register("synthetic_gradnorm")
def load_synthetic_gradnorm(n: int = 5000, d_in: int = 250, d_out: int = 100,
                            scales: list[float] | None = None, normalize: bool = False,
                            seed: int = 0) -> pd.DataFrame:
    """The toy problem of "GradNorm: Gradient Normalization for Adaptive Loss Balancing in
    Deep Multitask Networks" (Chen et al., ICML 2018), §4.

    Task i: y_i = σ_i · tanh((B + ε_i) x), with B (d_out × d_in) shared by all tasks and
    ε_i task-specific, elementwise B ~ N(0, 10) and ε_i ~ N(0, 3.5) (variances), x ~ N(0, I).
    The scales σ_i make the task losses differ by orders of magnitude. With the paper's
    constants most pre-activations saturate tanh; `normalize: true` divides them by √d_in.

    Args:
        n: rows.
        d_in: input dimension.
        d_out: outputs per task.
        scales: σ_i per task (default: 1 and 100, two tasks).
        normalize: divide (B + ε_i) x by √d_in (not in the paper).
        seed: the generator's seed.

    Columns: x_0 … x_{d_in-1}; for task i (1-based), t{i}_0 … t{i}_{d_out-1}.
    """
    scales = list(scales if scales is not None else [1.0, 100.0])
    rng = np.random.default_rng(seed)
    shared = rng.normal(scale=np.sqrt(10.0), size=(d_out, d_in))
    x = rng.normal(size=(n, d_in))
    columns = {f"x_{i}": x[:, i].astype("float32") for i in range(d_in)}
    for i, sigma in enumerate(scales, start=1):
        task = shared + rng.normal(scale=np.sqrt(3.5), size=(d_out, d_in))
        pre = x @ task.T / (np.sqrt(d_in) if normalize else 1.0)
        y = sigma * np.tanh(pre)
        columns.update({f"t{i}_{j}": y[:, j].astype("float32") for j in range(d_out)})
    frame = pd.DataFrame(columns)
    return frame
