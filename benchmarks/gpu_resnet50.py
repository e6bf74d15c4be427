"""ResNet50 training throughput at 224×224 on a GPU: float32, mixed precision, mixed + XLA.

For comparison with NVIDIA's published TensorFlow figures (DeepLearningExamples resnet50v1.5;
A100: 909 img/s TF32+XLA, 2,375 img/s AMP+XLA). Random images and labels, no download
(`weights=None`), batch 256; the first epoch (tracing, autotuning) is excluded. `--impl mtl`
trains the same network through `mtl` (a recipe on the built-in `shapes` images at 224×224).

    python benchmarks/gpu_resnet50.py --precision mixed_float16 --xla
"""

from __future__ import annotations

import argparse
import json
import time


def plain_keras(precision: str, xla: bool, batch: int, steps: int, epochs: int) -> list[float]:
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(precision)
    inputs = keras.Input((224, 224, 3))
    x = keras.applications.ResNet50(include_top=False, weights=None, pooling="avg")(inputs)
    outputs = keras.layers.Dense(1000, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), "sparse_categorical_crossentropy",
                  jit_compile=xla)
    images = tf.random.uniform((batch, 224, 224, 3), 0, 255)
    labels = tf.random.uniform((batch,), 0, 1000, dtype=tf.int32)
    data = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(tf.data.AUTOTUNE)
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    model.fit(data, steps_per_epoch=steps, epochs=epochs, callbacks=[Clock()], verbose=0)
    return [batch * steps / t for t in times[1:]]


def with_mtl(precision: str, xla: bool, batch: int, epochs: int, n: int) -> list[float]:
    import json as js
    from pathlib import Path
    import tempfile

    from mtl_runner.recipe import validate_recipe
    from mtl_runner.training.run import train

    recipe = {
        "name": "gpu-resnet50",
        "data": {"source": "builtin", "name": "shapes", "options": {"n": n, "size": 224, "seed": 0},
                 "image": {"size": 224}, "split": {"validation": 0.0, "test": 0.0}},
        "tasks": {"shape": {"type": "classification", "label": "shape"}},
        "model": {"backbone": {"name": "resnet50", "weights": "none"},
                  "trunk": {"type": "shared_bottom", "units": []}, "heads": {"units": []}},
        "training": {"batch_size": batch, "early_stopping": None, "stages": [
            {"name": "all", "epochs": epochs, "learning_rate": 0.1, "trainable": "all"}]},
        "runtime": {"precision": precision, "jit_compile": xla, "checkpoint_seconds": 1e9},
        "tracking": {"tensorboard": False},
    }
    with tempfile.TemporaryDirectory() as folder:
        run = train(validate_recipe(recipe, Path(folder) / "recipe.yaml"), folder, echo=lambda s: None)
        history = js.loads(run.file("run.json").read_text())
    seconds = history["stages"][0]["seconds"]
    return [n * epochs / seconds]  # includes the first epoch: a lower bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=("keras", "mtl"), default="keras")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=4096, help="images for --impl mtl")
    args = parser.parse_args()
    if args.impl == "keras":
        rates = plain_keras(args.precision, args.xla, args.batch, args.steps, args.epochs)
    else:
        rates = with_mtl(args.precision, args.xla, args.batch, args.epochs, args.n)
    print(json.dumps({"impl": args.impl, "precision": args.precision, "xla": args.xla,
                      "batch": args.batch, "images_per_second": [round(r, 1) for r in rates]}))


if __name__ == "__main__":
    main()
