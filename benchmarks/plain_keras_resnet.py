"""Steady-state ResNet50 fine-tuning throughput at 96×96: `mtl` vs the same model in plain Keras.

Both train ResNet50 (random weights: no download; BatchNorm in inference mode, as the runner
does) with a [32] head for each of two tasks (shape, colour) of the built-in `shapes` images,
the whole network trainable, Adam, batch 32, a 15% validation split, no early stopping. The
throughput is train examples / epoch time (validation included, the same for both) over the
epochs after the first, which traces and warms up.

    python benchmarks/plain_keras_resnet.py --impl keras|mtl [--n 300] [--epochs 3]
    python benchmarks/plain_keras_resnet.py --impl keras --precision mixed_bfloat16 --inference

Prints one JSON line: {"impl", "precision", "train_examples", "epoch_seconds", "examples_per_s",
and with --inference "inference_examples_per_s"}.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

SIZE = 96


def recipe(n: int, epochs: int, precision: str) -> dict:
    """The mtl recipe this benchmark runs; the plain-Keras model below is its hand-written twin."""
    return {
        "name": "bench-resnet50",
        "data": {"source": "builtin", "name": "shapes", "options": {"n": n, "size": SIZE, "seed": 0},
                 "image": {"column": "image", "size": SIZE},
                 "split": {"validation": 0.15, "test": 0.15}},
        "tasks": {"shape": {"type": "classification", "label": "shape"},
                  "colour": {"type": "classification", "label": "colour"}},
        "model": {"backbone": {"name": "resnet50", "weights": "none", "pooling": "avg"},
                  "trunk": {"type": "shared_bottom", "units": []}, "heads": {"units": [32]}},
        "training": {"batch_size": 32, "epochs": epochs, "early_stopping": None,
                     "cache_features": False, "optimizer": {"name": "adam", "learning_rate": 1e-4},
                     "stages": [{"name": "all", "epochs": epochs, "learning_rate": 1e-4,
                                 "trainable": "all"}]},
        "runtime": {"precision": precision},
        "seed": 0,
    }


def run_mtl(n: int, epochs: int, precision: str) -> tuple[int, list[float]]:
    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        loaded = validate_recipe(recipe(n, epochs, precision), Path(folder) / "bench.yaml")
        done = train(loaded, folder, echo=lines.append)
        info = json.loads(done.file("run.json").read_text())
    seconds = [float(m.group(1)) for line in lines
               if (m := re.search(r"epoch .*\((\d+\.\d+)s\)$", line))]
    return info["splits"]["train"], seconds


def run_keras(n: int, epochs: int, precision: str, inference: bool) -> tuple[int, list[float], float | None]:
    import keras
    import numpy as np
    from sklearn.model_selection import train_test_split

    from mtl_runner.data.builtin.shapes import load_shapes

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    frame = load_shapes(n=n, size=SIZE, seed=0)
    images = np.stack(frame["image"].to_numpy()).reshape(-1, SIZE, SIZE, 3).astype("uint8")
    labels = {t: frame[t].astype("category").cat.codes.to_numpy() for t in ("shape", "colour")}
    index = np.arange(n)
    train, rest = train_test_split(index, test_size=0.30, stratify=labels["shape"], random_state=0)
    validation, _ = train_test_split(rest, test_size=0.50, stratify=labels["shape"][rest], random_state=0)

    inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
    x = keras.applications.resnet50.preprocess_input(keras.ops.cast(inputs, "float32"))
    backbone = keras.applications.ResNet50(include_top=False, weights=None, pooling="avg",
                                           input_shape=(SIZE, SIZE, 3))
    for layer in backbone.layers:  # as in Keras' fine-tuning guide (and the runner): BatchNorm stays frozen
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    features = backbone(x, training=False)
    outputs = {t: keras.layers.Dense(3, name=t, dtype="float32")(
        keras.layers.Dense(32, activation="relu")(features)) for t in labels}
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-4),
                  loss={t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in labels},
                  metrics={t: ["accuracy"] for t in labels})

    class EpochTimes(keras.callbacks.Callback):
        seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = EpochTimes()
    model.fit(images[train], {t: y[train] for t, y in labels.items()}, batch_size=32, epochs=epochs,
              validation_data=(images[validation], {t: y[validation] for t, y in labels.items()}),
              callbacks=[timer], verbose=0)
    per_second = None
    if inference:
        model.predict(images[:64], batch_size=32, verbose=0)  # trace
        started = time.perf_counter()
        model.predict(images, batch_size=32, verbose=0)
        per_second = n / (time.perf_counter() - started)
    return len(train), timer.seconds, per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=("keras", "mtl"), required=True)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--inference", action="store_true")
    args = parser.parse_args()
    inference = None
    if args.impl == "mtl":
        train_examples, seconds = run_mtl(args.n, args.epochs, args.precision)
    else:
        train_examples, seconds, inference = run_keras(args.n, args.epochs, args.precision,
                                                      args.inference)
    steady = seconds[1:] or seconds
    result = {"impl": args.impl, "precision": args.precision, "train_examples": train_examples,
              "epoch_seconds": [round(s, 3) for s in seconds],
              "examples_per_s": train_examples / statistics.median(steady)}
    if inference is not None:
        result["inference_examples_per_s"] = inference
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
