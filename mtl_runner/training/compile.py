"""Compiling for training: optimizer, per-task losses and metrics, loss weighting."""

from __future__ import annotations

from typing import Any

import keras

from mtl_runner.tasks import TaskType


def build_optimizer(config) -> keras.optimizers.Optimizer:
    """The recipe's optimizer (`training.optimizer`)."""
    options: dict[str, Any] = {"learning_rate": config.learning_rate}
    if config.clipnorm:
        options["clipnorm"] = config.clipnorm
    if config.weight_decay is not None:
        options["weight_decay"] = config.weight_decay
    if config.name == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, **options)
    if config.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=config.momentum, **options)
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "nadam": keras.optimizers.Nadam}
    return classes[config.name](**options)


def compile_for_training(model: keras.Model, recipe, tasks: dict[str, TaskType],
                         infos: dict[str, dict[str, Any]], optimizer=None) -> keras.Model:
    """Compiles the network for Σ_i w_i L_i and returns the model to call `fit` on.

    Args:
        model: the functional network (the one that is saved).
        recipe: the validated recipe.
        tasks: task objects by name.
        infos: each task's label encoding.
        optimizer: an optimizer to use instead of the recipe's (fine-tuning stages).

    Returns:
        The model to train; saving `model` afterwards keeps the trained weights.
    """
    from mtl_runner.weighting import WEIGHTINGS

    weighting = WEIGHTINGS.get(recipe.weighting.name)(
        recipe.weighting, {n: t.weight for n, t in recipe.tasks.items()})
    loss_weights = weighting.loss_weights()
    model.compile(
        optimizer=optimizer or build_optimizer(recipe.training.optimizer),
        loss={name: task.keras_loss() for name, task in tasks.items()},
        loss_weights=loss_weights,
        # weighted: an example whose label is missing (mask 0) counts in neither loss nor metric
        weighted_metrics={name: task.keras_metrics(infos[name]) for name, task in tasks.items()},
    )
    return model
