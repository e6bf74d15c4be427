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


def build_weighting(recipe):
    """The recipe's weighting strategy, not yet built."""
    from mtl_runner.weighting import WEIGHTINGS

    return WEIGHTINGS.get(recipe.weighting.name)(
        recipe.weighting, {name: task.weight for name, task in recipe.tasks.items()})


def compile_for_training(model: keras.Model, recipe, tasks: dict[str, TaskType],
                         infos: dict[str, dict[str, Any]], optimizer=None) -> keras.Model:
    """Wraps the network in a `MultiTaskModel` for the recipe's weighting and compiles it.

    Every strategy, `static` included, trains through the same step (see
    `mtl_runner.training.multitask_model`), so the logs have the same names whatever the
    strategy: `loss`, `<task>_loss`, `<task>_<metric>`, `weight_<task>`, and with
    `weighting.telemetry` `grad_cosine` and `grad_conflict`; `val_` versions of the first three.

    Call it inside the distribution strategy's scope, if any: the wrapper creates the strategy's
    variables. Calling it again (a fine-tuning stage with a new optimizer, after `trainable`
    flags changed) builds a fresh wrapper around the same network.

    Args:
        model: the functional network (the one that is saved).
        recipe: the validated recipe.
        tasks: task objects by name.
        infos: each task's label encoding.
        optimizer: an optimizer to use instead of the recipe's (fine-tuning stages).

    Returns:
        The `MultiTaskModel` to call `fit` on. It shares its layers with `model`, so saving
        `model` afterwards keeps the trained weights; the wrapper itself is not saved.
    """
    from mtl_runner.training.multitask_model import MultiTaskModel

    trainer = MultiTaskModel(model, tasks, build_weighting(recipe),
                             {name: task.weight for name, task in recipe.tasks.items()})
    trainer.compile(
        optimizer=optimizer or build_optimizer(recipe.training.optimizer),
        jit_compile=recipe.runtime.jit_compile,
        steps_per_execution=recipe.runtime.steps_per_execution,
        # weighted: an example whose label is missing (mask 0) counts in neither loss nor metric
        weighted_metrics={name: task.keras_metrics(infos[name]) for name, task in tasks.items()},
    )
    trainer.optimizer.build(trainer.update_variables())
    return trainer
