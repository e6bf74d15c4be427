"""Training on real image files from disk vs the same images already in memory, alternately.

Writes the built-in `shapes` images as PNG files with a CSV of paths and labels (the disk
case: `data.source: csv`, the runner reads and decodes every file), and trains the same
recipe on the built-in dataset, whose images are generated in memory (the memory case).
Each case is timed end to end in this process (validate the recipe, read the data, train,
evaluate, save); the ratio is memory time / disk time, i.e. disk throughput relative to memory.

    python benchmarks/input_pipeline.py [--n 600] [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def recipe(source: dict, epochs: int) -> dict:
    return {
        "name": "bench-input",
        "data": {**source, "image": {"column": "image", "size": 32},
                 "split": {"validation": 0.15, "test": 0.15}},
        "tasks": {"shape": {"type": "classification", "label": "shape"},
                  "colour": {"type": "classification", "label": "colour"}},
        "model": {"trunk": {"type": "shared_bottom", "units": [64, 32]}, "heads": {"units": [16]}},
        "training": {"batch_size": 32, "epochs": epochs, "early_stopping": None},
        "seed": 0,
    }


def write_files(folder: Path, n: int) -> Path:
    from PIL import Image

    from mtl_runner.data.builtin.shapes import load_shapes

    frame = load_shapes(n=n, size=32, seed=0)
    (folder / "images").mkdir()
    paths = []
    for row, image in enumerate(frame["image"]):
        path = f"images/{row:05d}.png"
        Image.fromarray(image.reshape(32, 32, 3)).save(folder / path)
        paths.append(path)
    frame = frame.drop(columns="image").assign(image=paths)
    frame.to_csv(folder / "shapes.csv", index=False)
    return folder / "shapes.csv"


def timed_run(data: dict, epochs: int, results: Path) -> float:
    import keras

    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train

    keras.backend.clear_session()
    started = time.perf_counter()
    loaded = validate_recipe(recipe(data, epochs), results / "bench.yaml")
    train(loaded, results, echo=lambda line: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        disk = {"source": "csv", "path": str(write_files(folder, args.n))}
        memory = {"source": "builtin", "name": "shapes", "options": {"n": args.n, "size": 32, "seed": 0}}
        timed_run(memory, 1, folder)  # warm up imports and TensorFlow once
        times: dict[str, list[float]] = {"disk": [], "memory": []}
        for repeat in range(args.repeats):
            order = ("disk", "memory") if repeat % 2 == 0 else ("memory", "disk")
            for case in order:
                times[case].append(timed_run(disk if case == "disk" else memory, args.epochs, folder))
    ratios = [m / d for m, d in zip(times["memory"], times["disk"])]
    print(json.dumps({"n": args.n, "epochs": args.epochs, "disk_s": times["disk"],
                      "memory_s": times["memory"], "ratios": ratios,
                      "ratio_median": statistics.median(ratios)}), flush=True)


if __name__ == "__main__":
    main()
