"""A tiny three-task model for the weighting and trainer tests: Dense(4) trunk, Dense heads."""

from __future__ import annotations

import numpy as np

ROWS = 32


def make_tasks(types=("regression", "classification", "binary")):
    from mtl_runner.recipe.schema import TaskConfig
    from mtl_runner.tasks import TASK_TYPES

    names = {"regression": "size", "classification": "kind", "binary": "flag"}
    return {names[t]: TASK_TYPES.get(t)(names[t], TaskConfig(type=t, label=names[t])) for t in types}


INFOS = {"size": {"columns": ["size"], "mean": [0.0], "scale": [1.0]},
         "kind": {"classes": ["a", "b", "c"]},
         "flag": {"classes": ["no", "yes"], "positive": "yes"}}
UNITS = {"size": 1, "kind": 3, "flag": 1, "noisy": 1}


def make_network(tasks, features: int = 5, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(features,), name="x")
    hidden = keras.layers.Dense(4, activation="tanh", name="shared_dense_0")(inputs)
    outputs = {name: keras.layers.Dense(UNITS[name], activation=task.activation, name=name)(hidden)
               for name, task in tasks.items()}
    return keras.Model({"x": inputs}, outputs)


def make_batch(tasks, rows: int = ROWS, features: int = 5, seed: int = 0, masks=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype("float32")
    y = {}
    for name in tasks:
        if name == "size":
            y[name] = (x[:, :1] * 2.0 + rng.normal(scale=0.1, size=(rows, 1))).astype("float32")
        elif name == "kind":
            y[name] = np.eye(3, dtype="float32")[rng.integers(0, 3, rows)]
        else:
            y[name] = (x[:, 1:2] > 0).astype("float32")
    masks = masks or {}
    mask = {name: masks.get(name, np.ones(rows, dtype="float32")) for name in tasks}
    return {"x": x}, y, mask


def make_trainer(strategy: str, tasks=None, learning_rate: float = 0.05, **options):
    """A compiled MultiTaskModel around the tiny network."""
    import keras

    from mtl_runner.training.multitask_model import MultiTaskModel
    from mtl_runner.weighting import WEIGHTINGS

    keras.backend.clear_session()
    tasks = tasks or make_tasks()
    cls = WEIGHTINGS.get(strategy)
    weighting = cls(cls.Config(name=strategy, **options), {name: 1.0 for name in tasks})
    network = make_network(tasks)
    trainer = MultiTaskModel(network, tasks, weighting, {name: 1.0 for name in tasks})
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate),
                    weighted_metrics={n: t.keras_metrics(INFOS.get(n, INFOS["size"]))
                                      for n, t in tasks.items()})
    return trainer, network, tasks


def dataset(batch, batch_size: int = ROWS):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(batch).batch(batch_size)
