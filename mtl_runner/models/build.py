"""Assembles the multi-task model: inputs → trunk (θ) → one head per task (θ_i)."""

from __future__ import annotations

from typing import Any

import keras

from mtl_runner.data.features import FeatureSpec
from mtl_runner.models.inputs import build_inputs
from mtl_runner.models.trunks import TRUNKS
from mtl_runner.tasks import TaskType


def build_head(x, task: TaskType, head_config, units: int):
    """Dense layers of one task, then its output layer named after the task (float32)."""
    for i, width in enumerate(head_config.units):
        x = keras.layers.Dense(width, activation=head_config.activation,
                               name=f"{task.task_name}_dense_{i}")(x)
        if head_config.dropout:
            x = keras.layers.Dropout(head_config.dropout, name=f"{task.task_name}_dropout_{i}")(x)
    return keras.layers.Dense(units, activation=task.activation, dtype="float32",
                              name=task.task_name)(x)


def build_top(features, recipe, tasks: dict[str, TaskType], infos: dict[str, dict[str, Any]]):
    """Trunk and heads on a feature tensor: one output tensor per task."""
    trunk = TRUNKS.get(recipe.model.trunk.type)(recipe.model.trunk)
    representations = trunk.build(features, list(tasks))
    return {
        name: build_head(representations[name], task, task.config.head or recipe.model.heads,
                         task.output_units(infos[name]))
        for name, task in tasks.items()
    }


def build_model(recipe, spec: FeatureSpec | None, tasks: dict[str, TaskType],
                infos: dict[str, dict[str, Any]]) -> keras.Model:
    """The functional multi-task model of a recipe, not yet compiled.

    Tabular input: one named input per feature column, preprocessing layers, trunk, heads.
    Image input: `image` → augmentation → encoder (backbone) → decoder (trunk and heads); see
    `mtl_runner.models.images`.

    Args:
        recipe: the validated `Recipe`.
        spec: feature columns and their train statistics (None for image input).
        tasks: task objects by task name.
        infos: each task's label encoding (classes, scale).

    Returns:
        A `keras.Model` with one output per task, named after the task.
    """
    from mtl_runner.models import images

    name = recipe.name.replace("-", "_").replace(".", "_")
    if recipe.data.image is None:
        inputs, features = build_inputs(spec)
        return keras.Model(inputs=inputs, outputs=build_top(features, recipe, tasks, infos), name=name)
    shape = recipe.data.image.shape()
    image = keras.Input(shape=shape, name="image")
    augment = images.augmentation(recipe.data.augment)
    x = augment(image) if augment is not None else image
    if recipe.model.backbone is None:
        return keras.Model({"image": image}, build_top(images.flatten_pixels(x), recipe, tasks, infos),
                           name=name)
    encoder = images.build_encoder(recipe.model.backbone, shape)
    pooled = keras.Input(shape=encoder.output.shape[1:], name="features")
    decoder = keras.Model({"features": pooled}, build_top(pooled, recipe, tasks, infos),
                          name=images.DECODER)
    outputs = decoder({"features": encoder(x)})
    return keras.Model({"image": image}, {task: outputs[task] for task in tasks}, name=name)
