"""Image models: augmentation → encoder (preprocessing + pretrained backbone) → decoder.

The encoder is the lower part of the shared parameters θ; the decoder holds the trunk on
the pooled features and the task heads. Keeping them as two sub-models lets a frozen stage
compute the encoder's features once and train the decoder alone (feature caching).
"""

from __future__ import annotations

import keras

from mtl_runner.errors import RunError
from mtl_runner.models.backbones import BACKBONES
from mtl_runner.models.layers import PreprocessInput

ENCODER, DECODER, BACKBONE = "encoder", "decoder", "backbone"


def augmentation(config) -> keras.Sequential | None:
    """Random flips, rotations, zooms and contrast; Keras turns them off outside training."""
    if config is None:
        return None
    layers = []
    if config.flip != "none":
        layers.append(keras.layers.RandomFlip(config.flip))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast))
    return keras.Sequential(layers, name="augment") if layers else None


def build_backbone(config, input_shape: tuple[int, int, int]):
    """The application model with ImageNet weights, or uninitialised for every other source
    (a weights file or an earlier run's backbone is loaded after the model is built)."""
    backbone = BACKBONES.get(config.name)
    height, width, channels = input_shape
    if min(height, width) < backbone.min_size:
        raise RunError(f"{config.name} needs images of at least {backbone.min_size}×"
                       f"{backbone.min_size}; data.image.size is {height}×{width}")
    if channels != 3:
        raise RunError(f"{config.name} reads RGB images; set data.image.channels: 3")
    if config.weights != "imagenet":
        return backbone.build(input_shape, None, config.pooling)
    try:
        return backbone.build(input_shape, "imagenet", config.pooling)
    except Exception as error:  # noqa: BLE001 - urllib, OSError, ValueError from keras' fetcher
        raise RunError(f"could not load the ImageNet weights of {config.name} ({type(error).__name__}: "
                       f"{str(error)[:300]}). Keras downloads them once into ~/.keras/models; "
                       f"without a network, use --weights FILE (a weights file of this backbone) "
                       f"or --weights none (random initialisation).") from None


def build_encoder(config, input_shape: tuple[int, int, int]) -> keras.Model:
    """Preprocessing + backbone.

    Whether BatchNorm layers normalize with batch or moving statistics follows their
    `trainable` flag (Keras runs a non-trainable BatchNorm in inference mode even in `fit`),
    which `training.stages.set_trainable` sets from `config.batch_norm_mode()`; when they
    train, their momentum is `batch_norm.TRAIN_MOMENTUM` (see `mtl_runner.models.batch_norm`).
    """
    from mtl_runner.models.batch_norm import set_train_momentum

    image = keras.Input(shape=input_shape, name="image")
    x = PreprocessInput(BACKBONES.get(config.name).preprocess, name="preprocess")(image)
    backbone = build_backbone(config, input_shape)
    if config.batch_norm_mode() == "train":
        set_train_momentum(backbone)
    features = backbone(x, training=False)
    return keras.Model(image, features, name=ENCODER)


def flatten_pixels(image):
    """Without a backbone, an image becomes a vector of pixels in [0, 1]."""
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(image)
    return keras.layers.Flatten(name="pixels")(x)


def encoder_and_backbone(model: keras.Model):
    """The encoder and backbone sub-models of an image model, or (None, None)."""
    try:
        encoder = model.get_layer(ENCODER)
    except ValueError:
        return None, None
    return encoder, encoder.get_layer(BACKBONE)
