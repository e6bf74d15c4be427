"""A backbone's BatchNorm layers: frozen for pretrained weights, trained for random ones.

`model.backbone.batch_norm` is `frozen`, `train` or `auto` (train when `weights: none`).

- **frozen**: the layers never train and always normalize with their moving statistics
  (inference mode). Right for pretrained weights: the statistics came with them.
- **train**: the layers train in every stage (batch statistics; their moving statistics
  follow with momentum `TRAIN_MOMENTUM` instead of the application's 0.999 or 0.99). Before
  each validation pass they are recalibrated on the first `VALIDATION_SAMPLE` training images
  (`RecalibrateBeforeValidation`): otherwise a few steps an epoch leave them stale, validation
  sees degenerate features, and early stopping restores the first epoch's weights. After
  training the moving statistics are
  recalibrated: one deterministic pass over the training images, in order, in training mode,
  each batch weighted by its size (a cumulative average, momentum 0 for the first batch), so
  that the test split sees the statistics of the final weights and not of a stale average.

Random weights with frozen BatchNorm give degenerate features (a random MobileNetV2 gives
about 1e-12): `feature_spread` measures them, and the run warns.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mtl_runner.models.images import encoder_and_backbone

TRAIN_MOMENTUM = 0.9
# pooled features whose largest standard deviation across a batch is below this (absolutely,
# or relative to their magnitude) cannot be told apart by the heads
DEGENERATE_SPREAD = 1e-6
VALIDATION_SAMPLE = 512  # training images recalibrated on before each validation pass


def batch_norm_mode(recipe) -> str:
    """`frozen`, `train`, or "" when the recipe has no backbone."""
    backbone = recipe.model.backbone
    return backbone.batch_norm_mode() if backbone is not None else ""


def batch_norm_layers(backbone: keras.Model) -> list:
    return [layer for layer in backbone._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def set_train_momentum(backbone: keras.Model, momentum: float = TRAIN_MOMENTUM) -> None:
    """Gives every BatchNorm layer of `backbone` the momentum used while it trains."""
    for layer in batch_norm_layers(backbone):
        layer.momentum = momentum


def _images(images: np.ndarray, start: int, stop: int):
    return np.asarray(images[start:stop], dtype="float32")


def _statistics(layers: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]


def _restore(layers: list, saved: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for layer, (mean, variance) in zip(layers, saved):
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)


def recalibrate(model: keras.Model, images: np.ndarray, batch_size: int) -> dict[str, Any]:
    """Sets the backbone's BatchNorm moving statistics to their average over `images`.

    One pass in order, in training mode (nothing random: augmentation sits outside the
    encoder), with each layer's momentum set so that the result is the size-weighted mean of
    the batch means and variances; weights other than the statistics do not change.

    Args:
        model: an image model with a backbone.
        images: the training images (raw pixel values, as the model's input takes them).
        batch_size: images per batch (the training batch size, so the batch statistics are
            those training saw).

    Returns:
        What was done, for run.json: rows, batches, batch_size, layers.
    """
    encoder, backbone = encoder_and_backbone(model)
    layers = batch_norm_layers(backbone)
    saved = [(layer.momentum, layer.trainable) for layer in layers]
    seen, batches = 0, 0
    try:
        for layer in layers:
            layer.trainable = True  # a non-trainable BatchNorm ignores training=True
        for start in range(0, len(images), batch_size):
            batch = _images(images, start, start + batch_size)
            for layer in layers:  # new = old * m + batch * (1 - m): a running weighted mean
                layer.momentum = seen / (seen + len(batch))
            encoder(batch, training=True)
            seen += len(batch)
            batches += 1
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
    return {"rows": seen, "batches": batches, "batch_size": batch_size, "layers": len(layers)}


def feature_spread(model: keras.Model, images: np.ndarray, train_mode: bool) -> float | None:
    """How much the pooled backbone features vary across a batch of images.

    The features are computed as the first training step computes them (batch statistics
    when BatchNorm trains, moving statistics when frozen); the moving statistics are left as
    they were.

    Returns:
        The largest standard deviation of a feature across the batch, divided by the largest
        feature magnitude when that exceeds 1; None for fewer than 2 images.
    """
    if len(images) < 2:
        return None
    encoder, backbone = encoder_and_backbone(model)
    layers = batch_norm_layers(backbone)
    saved_statistics = _statistics(layers) if train_mode else None
    saved_trainable = [layer.trainable for layer in layers]
    try:
        if train_mode:
            for layer in layers:
                layer.trainable = True
        features = np.asarray(keras.ops.convert_to_numpy(
            encoder(_images(images, 0, len(images)), training=train_mode)), dtype="float64")
    finally:
        for layer, trainable in zip(layers, saved_trainable):
            layer.trainable = trainable
        if saved_statistics is not None:
            _restore(layers, saved_statistics)
    features = features.reshape(len(features), -1)
    if not np.isfinite(features).all():
        return 0.0
    spread = float(features.std(axis=0).max())
    return spread / max(1.0, float(np.abs(features).max()))


def degenerate_features_warning(model: keras.Model, recipe, images: np.ndarray) -> str | None:
    """A warning when the backbone's pooled features barely vary over the first batch."""
    mode = batch_norm_mode(recipe)
    spread = feature_spread(model, images[: recipe.training.batch_size], mode == "train")
    if spread is None or spread >= DEGENERATE_SPREAD:
        return None
    backbone = recipe.model.backbone
    hint = ("set model.backbone.batch_norm: train (or auto)" if mode == "frozen"
            else "check the images and model.backbone.weights")
    return (f"the {backbone.name} features barely vary across the first batch of training "
            f"images (largest standard deviation {spread:.1e}; weights {backbone.weights}, "
            f"batch_norm {mode}), so the heads can hardly learn: {hint}")


def train_images(prepared) -> np.ndarray | None:
    """The training split's images, in their fixed order (None for a table model)."""
    inputs = prepared.x.get("train") or {}
    return inputs.get("image")


def check_features(model: keras.Model, recipe, prepared, run, echo) -> None:
    """Warns once (console and run.json `warnings`) when the first batch's features are
    degenerate, and records the BatchNorm mode in run.json."""
    images = train_images(prepared)
    if recipe.model.backbone is None or images is None:
        return
    mode = batch_norm_mode(recipe)
    run.update(batch_norm={"mode": mode, **({"momentum": TRAIN_MOMENTUM} if mode == "train" else {})})
    warning = degenerate_features_warning(model, recipe, images)
    if warning:
        run.add_warning(warning)
        echo(f"Warning: {warning}")


def finish_batch_norm(model: keras.Model, recipe, prepared, run, echo) -> None:
    """After training: recalibrates the moving statistics of BatchNorm layers that trained."""
    images = train_images(prepared)
    if batch_norm_mode(recipe) != "train" or images is None or not len(images):
        return
    done = recalibrate(model, images, recipe.training.batch_size)
    run.update(batch_norm={"mode": "train", "momentum": TRAIN_MOMENTUM, "recalibrated": done})
    echo(f"recalibrated the BatchNorm statistics of {done['layers']} layers on {done['rows']} "
         f"training images")


class RecalibrateBeforeValidation(keras.callbacks.Callback):
    """Recalibrates the backbone's BatchNorm statistics (on the first `VALIDATION_SAMPLE`
    training images, in order: deterministic) each time validation begins, so that the
    validation metrics, and early stopping's choice of the best epoch, see the current weights.
    """

    def __init__(self, network: keras.Model, images: np.ndarray, batch_size: int):
        super().__init__()
        self.network, self.images, self.batch_size = network, images[:VALIDATION_SAMPLE], batch_size

    def on_test_begin(self, logs: dict | None = None) -> None:
        recalibrate(self.network, self.images, self.batch_size)


def validation_callbacks(model: keras.Model, recipe, prepared) -> list:
    """`[RecalibrateBeforeValidation]` when the backbone's BatchNorm trains, else `[]`."""
    images = train_images(prepared)
    if (recipe.model.backbone is None or images is None or not len(images)
            or batch_norm_mode(recipe) != "train"):
        return []
    return [RecalibrateBeforeValidation(model, images, recipe.training.batch_size)]
