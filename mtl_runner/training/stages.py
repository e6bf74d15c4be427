"""Staged schedules: which layers train in each stage, and whether a stage can use cached
backbone features."""

from __future__ import annotations

import re

import keras

from mtl_runner.models.images import encoder_and_backbone


def stage_plan(recipe) -> list:
    """The recipe's stages, or one implicit stage `train` over every layer."""
    from mtl_runner.recipe.schema import StageConfig

    if recipe.training.stages:
        return list(recipe.training.stages)
    return [StageConfig(name="train", epochs=recipe.training.epochs,
                        learning_rate=recipe.training.optimizer.learning_rate, trainable="all")]


def is_batch_norm(layer) -> bool:
    return isinstance(layer, keras.layers.BatchNormalization)


def set_trainable(model: keras.Model, trainable: str, task_names: list[str],
                  batch_norm: str = "frozen") -> None:
    """Freezes and unfreezes layers for one stage.

    Args:
        model: the network.
        trainable: `heads` (everything below the task heads' trunk is frozen: the backbone
            with a backbone, the whole trunk without), `all`, `top:N` / `top:N%` (the last N
            backbone layers that hold weights), or a regular expression over backbone layer
            names.
        task_names: the tasks, whose head layers are named after them.
        batch_norm: `frozen`: the backbone's BatchNorm layers stay frozen (inference mode)
            in every stage; `train`: they train (batch statistics) in every stage, `heads`
            included (see `mtl_runner.models.batch_norm`).
    """
    encoder, backbone = encoder_and_backbone(model)
    # start from everything trainable: Keras does not undo a layer's own `trainable = False`
    # when its parent model is set trainable again, so an earlier stage's freezing would stick
    for layer in model._flatten_layers(include_self=True):
        layer.trainable = True
    if backbone is None:
        if trainable == "heads":
            for layer in model.layers:
                layer.trainable = any(layer.name == t or layer.name.startswith(f"{t}_")
                                      for t in task_names)
        return
    if trainable == "heads" and batch_norm != "train":
        encoder.trainable = False
        return
    if trainable == "heads":
        for layer in backbone.layers:
            layer.trainable = is_batch_norm(layer)
        return
    layers = [layer for layer in backbone.layers if layer.weights]
    if trainable == "all":
        chosen = layers
    elif trainable.startswith("top:"):
        count = trainable[4:]
        n = round(len(layers) * int(count[:-1]) / 100) if count.endswith("%") else int(count)
        chosen = layers[-n:] if n > 0 else []
    else:
        pattern = re.compile(trainable)
        chosen = [layer for layer in layers if pattern.search(layer.name)]
    chosen_ids = {id(layer) for layer in chosen}
    for layer in backbone.layers:
        layer.trainable = (batch_norm == "train") if is_batch_norm(layer) else id(layer) in chosen_ids


def can_cache_features(model: keras.Model, recipe, stage) -> bool:
    """A stage may train on cached features when the backbone is frozen, its BatchNorm
    included, and nothing random (augmentation) sits in front of it."""
    encoder, _ = encoder_and_backbone(model)
    return (encoder is not None and stage.trainable == "heads" and recipe.data.augment is None
            and recipe.training.cache_features
            and recipe.model.backbone.batch_norm_mode() == "frozen")


def trainable_count(model: keras.Model) -> int:
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))
