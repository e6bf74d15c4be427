"""Chen et al. (ICML 2018) §4 on `synthetic_gradnorm`: GradNorm vs equal weights.

Two regression tasks share a random map but differ 100× in scale (targets not standardized:
recipes/gradnorm_toy.yaml). For each seed, train with `gradnorm` (α = 0.12, the paper's value
for this toy) and with `static` equal weights, and report Σ_i L_i(t) / L_i(1) on the
validation split at the last epoch (the paper's "sum of loss ratios"; L_i(1) is the loss after
the first epoch, our closest stand-in for the initial loss), plus each task's ratio.

    python benchmarks/protocols/gradnorm_toy.py --seeds 5 --out benchmarks/protocols/gradnorm_toy.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "gradnorm_toy.yaml"
METHODS = {"gradnorm": {"name": "gradnorm", "alpha": 0.12}, "equal weights": {"name": "static"}}


def run_one(seed: int, weighting: dict, epochs: int, results: Path) -> dict:
    import keras

    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train

    data = yaml.safe_load(RECIPE.read_text())
    data["data"]["options"]["seed"] = seed
    data["data"]["split"]["seed"] = seed
    data["weighting"] = weighting
    data["training"]["epochs"] = epochs
    data["seed"] = seed
    keras.backend.clear_session()
    run = train(validate_recipe(data, RECIPE), results, echo=lambda line: None)
    history = pd.read_csv(run.file("history.csv"))
    ratios = {task: float(history[f"val_{task}_loss"].iloc[-1] / history[f"val_{task}_loss"].iloc[0])
              for task in ("small", "large")}
    return {"sum": sum(ratios.values()), **ratios}


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for method, weighting in METHODS.items():
                rows.append({"seed": seed, "method": method, **run_one(seed, weighting, args.epochs, Path(folder))})
                print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    lines = [f"Validation loss ratios L_i(last epoch) / L_i(epoch 1), mean ± std over {args.seeds} seeds; "
             f"{args.epochs} epochs; task scales 1 and 100; {time.perf_counter() - started:.0f} s in all.", "",
             "| method | Σ_i L_i(t)/L_i(1) | small task (σ=1) | large task (σ=100) |", "|---|---|---|---|"]
    for method in METHODS:
        g = frame[frame.method == method]
        lines.append(f"| {method} | {mean_std(g['sum'].tolist())} | {mean_std(g['small'].tolist())} | "
                     f"{mean_std(g['large'].tolist())} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
