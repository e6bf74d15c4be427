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


def build_model(recipe, spec: FeatureSpec, tasks: dict[str, TaskType],
                infos: dict[str, dict[str, Any]]) -> keras.Model:
    """The functional multi-task model of a recipe, not yet compiled.

    Args:
        recipe: the validated `Recipe`.
        spec: feature columns and their train statistics.
        tasks: task objects by task name.
        infos: each task's label encoding (classes, scale).

    Returns:
        A `keras.Model` with one named input per feature and one output per task.
    """
    inputs, features = build_inputs(spec)
    trunk = TRUNKS.get(recipe.model.trunk.type)(recipe.model.trunk)
    representations = trunk.build(features, list(tasks))
    outputs = {
        name: build_head(representations[name], task, task.config.head or recipe.model.heads,
                         task.output_units(infos[name]))
        for name, task in tasks.items()
    }
    return keras.Model(inputs=inputs, outputs=outputs, name=recipe.name.replace("-", "_"))
