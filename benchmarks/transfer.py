"""Does multi-task pre-training help fine-tuning on a small target set? Measured, not assumed.

Pre-trains ResNet50 (random initialisation) twice: on two coarse tasks (parity, ≥ 5) of 1,397
digits (recipes/pretrain_then_finetune/pretrain_digits.yaml), and on three tasks of the
built-in `shapes` images (pretrain_shapes.yaml, another domain). Then fine-tunes on 400 other
digits labelled with their identity (finetune_digits.yaml), starting from each pre-trained
backbone (`weights: run:...`) and, as the control, from random weights (`weights: none`), with
the same schedule — for several seeds (the seed changes the split of the target set, the
head's initialisation and the data order; the target images stay the same 400).

    python benchmarks/transfer.py --seeds 3 --out benchmarks/transfer.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

FOLDER = Path(__file__).resolve().parents[1] / "recipes" / "pretrain_then_finetune"


def train(path: Path, results: Path, changes: dict) -> Path:
    import keras

    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train as run_training

    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    keras.backend.clear_session()
    return run_training(validate_recipe(data, path), results, echo=lambda line: None).path


def accuracy(run: Path) -> float:
    metrics = pd.read_csv(run / "metrics.csv")
    return float(metrics[(metrics.split == "test") & (metrics.metric == "accuracy")]["value"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder)
        sources = {"pretrained on digit attributes": train(FOLDER / "pretrain_digits.yaml", results, {}),
                   "pretrained on shapes": train(FOLDER / "pretrain_shapes.yaml", results, {})}
        for name, run in sources.items():
            metrics = pd.read_csv(run / "metrics.csv")
            print(name, metrics[metrics.split == "test"].to_string(), flush=True)
        starts = {**{name: f"run:{run.name}" for name, run in sources.items()}, "from scratch": "none"}
        for seed in range(args.seeds):
            for kind, start in starts.items():
                run = train(FOLDER / "finetune_digits.yaml", results,
                            {"model.backbone.weights": start, "seed": seed, "data.split.seed": seed})
                rows.append({"seed": seed, "weights": kind, "accuracy": accuracy(run)})
                print(rows[-1], flush=True)
    summary = {"seconds": round(time.perf_counter() - started), "runs": rows}
    for kind in dict.fromkeys(r["weights"] for r in rows):
        values = [r["accuracy"] for r in rows if r["weights"] == kind]
        summary[kind] = {"mean": statistics.mean(values),
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
