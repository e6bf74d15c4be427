"""Pretrained image backbones over `keras.applications`. One module per backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone
from mtl_runner.models.backbones import (  # noqa: F401  (registers)
    convnext_tiny,
    efficientnet_b0,
    mobilenet_v2,
    resnet50,
    resnet101,
)

__all__ = ["BACKBONES", "Backbone"]
