"""How long `mtl compare` takes over 200 run directories (the target: well under 1 s).

Writes 200 fake but realistic run folders (a resolved quickstart recipe, a 100-epoch
history.csv, a 24-row metrics.csv, a full run.json) into a temporary folder: 20 configurations
× 9 seeds of multi-task runs and 20 single-task baselines. Then times `mtl compare`, `mtl runs`
and `mtl --help` as subprocesses, as a user would run them, and prints the median of several.

Usage:
    .venv/bin/python benchmarks/bench_compare.py [--runs 200] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TASKS = {
    "species": ("classification", "species", ("accuracy", "macro_f1")),
    "sex": ("binary", "sex", ("accuracy", "f1", "auc")),
    "body_mass": ("regression", "body_mass_g", ("mae", "rmse", "r2")),
}


def recipe(seed: int, weighting: str, dropout: float, tasks: list[str]) -> dict:
    return {
        "name": "quickstart", "description": "Palmer penguins, three tasks.",
        "data": {"source": "builtin", "path": None, "name": "penguins", "features": None,
                 "exclude": ["year"], "categorical": None, "missing": "impute",
                 "split": {"validation": 0.15, "test": 0.15, "seed": None, "stratify": True}},
        "tasks": {t: {"type": TASKS[t][0], "label": TASKS[t][1], "loss": None, "metrics": None,
                      "weight": 1.0, "positive": None, "delimiter": None, "head": None}
                  for t in tasks},
        "model": {"trunk": {"type": "shared_bottom", "units": [64, 32], "activation": "relu",
                            "dropout": dropout, "batch_norm": False},
                  "heads": {"units": [16], "activation": "relu", "dropout": 0.0}},
        "weighting": {"name": weighting},
        "training": {"epochs": 100, "batch_size": 32,
                     "optimizer": {"name": "adam", "learning_rate": 0.001, "weight_decay": None,
                                   "momentum": 0.0, "clipnorm": None},
                     "early_stopping": {"monitor": "val_loss", "patience": 20, "min_delta": 0.0,
                                        "restore_best_weights": True}},
        "seed": seed,
    }


def write_run(root: Path, index: int, rng: random.Random, role: str, tasks: list[str],
              seed: int, weighting: str, dropout: float) -> None:
    run_id = f"20260101-{index:06d}-quickstart-{index:04x}"
    path = root / run_id
    path.mkdir()
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe(seed, weighting, dropout, tasks),
                                                     sort_keys=False))
    (path / "run.json").write_text(json.dumps({
        "id": run_id, "name": "quickstart", "recipe_name": "quickstart", "status": "completed",
        "error": None, "role": role, "parent": None,
        "started_at": f"2026-01-01T00:{index // 60 % 60:02d}:{index % 60:02d}+00:00",
        "finished_at": None, "duration_s": 9.5, "command": ["mtl", "train", "x.yaml"],
        "seed": seed, "pid": 1, "host": "bench", "device": "cpu",
        "features": {"numeric": ["a", "b", "c"], "fill": [1.0, 2.0, 3.0]},
        "epochs": 100, "best_epoch": 80, "train_seconds": 5.9, "parameters": 4453}, indent=2))
    lines = ["task,metric,split,value,n"]
    for split in ("train", "validation", "test"):
        for task in tasks:
            for metric in TASKS[task][2]:
                value = rng.uniform(200, 400) if metric in ("mae", "rmse") else rng.uniform(0.7, 1)
                lines.append(f"{task},{metric},{split},{value!r},52")
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    columns = ["loss", "val_loss"] + [f"{p}{t}_{m}" for p in ("", "val_") for t in tasks
                                      for m in ("loss", *TASKS[t][2])]
    history = ["epoch,stage,learning_rate," + ",".join(columns)]
    history += [f"{e},train,0.001," + ",".join(f"{rng.random():.6f}" for _ in columns)
                for e in range(1, 101)]
    (path / "history.csv").write_text("\n".join(history) + "\n")


def make_results(root: Path, count: int) -> None:
    rng = random.Random(0)
    configs = [(w, d) for w in ("static", "uncertainty", "dwa", "gradnorm", "pcgrad")
               for d in (0.0, 0.1, 0.2, 0.3)]
    index = 0
    baselines = min(len(TASKS) * 6, count // 10)
    for i in range(baselines):
        task = list(TASKS)[i % len(TASKS)]
        write_run(root, index, rng, f"baseline:{task}", [task], i // len(TASKS), "static", 0.1)
        index += 1
    while index < count:
        weighting, dropout = configs[(index - baselines) % len(configs)]
        seed = (index - baselines) // len(configs)
        write_run(root, index, rng, "mtl", list(TASKS), seed, weighting, dropout)
        index += 1


def timed(command: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    mtl = [sys.executable, "-m", "mtl_runner"]
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results"
        results.mkdir()
        make_results(results, args.runs)
        print(f"{args.runs} run directories in {results}; {os.cpu_count()} CPUs; "
              f"median of {args.repeat} runs (min, max) in seconds:")
        cases = {
            "mtl --help": [*mtl, "--help"],
            "mtl runs": [*mtl, "runs", "--results", str(results)],
            "mtl compare": [*mtl, "compare", "--results", str(results)],
            "mtl compare --format json": [*mtl, "compare", "--results", str(results),
                                          "--format", "json"],
        }
        for name, command in cases.items():
            times = timed(command, args.repeat)
            print(f"  {name:<28} {statistics.median(times):.3f}  "
                  f"({min(times):.3f}, {max(times):.3f})")


if __name__ == "__main__":
    main()
