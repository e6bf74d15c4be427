"""Staged schedules: which layers train in each stage, and whether a stage can use cached
backbone features."""

from __future__ import annotations

import re

import keras

from mtl_runner.models.images import encoder_and_backbone
from mtl_runner.models.parts import network_parts, parameter_count


def stage_plan(recipe) -> list:
    """The recipe's stages, or one implicit stage `train` over every layer."""
    from mtl_runner.recipe.schema import StageConfig

    if recipe.training.stages:
        return list(recipe.training.stages)
    return [StageConfig(name="train", epochs=recipe.training.epochs,
                        learning_rate=recipe.training.optimizer.learning_rate, trainable="all")]


def is_batch_norm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def every_layer(layer) -> list:
    """The layer and, depth first, every layer of the models nested in it."""
    nested = getattr(layer, "layers", ())
    return [layer, *(inner for child in nested for inner in every_layer(child))]


def set_trainable(model: keras.Model, trainable: str, task_names: list[str],
                  batch_norm: str = "frozen") -> None:
    """Freezes and unfreezes layers for one stage.

    Args:
        model: the network.
        trainable: `heads` (everything below the task heads' trunk is frozen: the backbone
            with a backbone, the whole trunk without), `all`, `top:N` / `top:N%` (the last N
            backbone layers that hold weights), or a regular expression over backbone layer
            names.
        task_names: the tasks, whose heads `mtl_runner.models.parts` finds.
        batch_norm: `frozen`: the backbone's BatchNorm layers stay frozen (inference mode)
            in every stage; `train`: they train (batch statistics) in every stage, `heads`
            included (see `mtl_runner.models.batch_norm`).
    """
    encoder, backbone = encoder_and_backbone(model)
    # start from everything trainable: a functional model does not pass `trainable = True` on
    # to the layers of its nested models, so an earlier stage's freezing would stick
    for layer in every_layer(model):
        layer.trainable = True
    if backbone is None:
        if trainable == "heads":  # the trunk is frozen, and so is every shared layer
            for layer in network_parts(model, task_names).shared:
                layer.trainable = False
        return
    if trainable == "heads" and batch_norm != "train":
        encoder.trainable = False
        return
    chosen = {id(layer) for layer in ([] if trainable == "heads"
                                      else chosen_layers(backbone, trainable))}
    for layer in backbone.layers:
        layer.trainable = (batch_norm == "train") if is_batch_norm(layer) else id(layer) in chosen


def chosen_layers(backbone: keras.Model, trainable: str) -> list:
    """The backbone layers with weights that a stage's `trainable` (`all`, `top:N`,
    `top:N%` or a regular expression) unfreezes."""
    layers = [layer for layer in backbone.layers if layer.weights]
    if trainable == "all":
        return layers
    if trainable.startswith("top:"):
        count = trainable[4:]
        n = round(len(layers) * int(count[:-1]) / 100) if count.endswith("%") else int(count)
        return layers[-n:] if n > 0 else []
    pattern = re.compile(trainable)
    return [layer for layer in layers if pattern.search(layer.name)]


def can_cache_features(model: keras.Model, recipe, stage) -> bool:
    """A stage may train on cached features when the backbone is frozen, its BatchNorm
    included, and nothing random (augmentation) sits in front of it."""
    encoder, _ = encoder_and_backbone(model)
    return (encoder is not None and stage.trainable == "heads" and recipe.data.augment is None
            and recipe.training.cache_features
            and recipe.model.backbone.batch_norm_mode() == "frozen")


def trainable_count(model: keras.Model) -> int:
    """The trainable parameters of a stage, once `set_trainable` has run (what run.json
    records as the stage's `trainable_parameters`, and `mtl doctor` prints)."""
    return parameter_count([model], trainable=True)
