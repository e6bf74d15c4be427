"""The backbone registry and how a backbone is built with its weights."""

from __future__ import annotations

from typing import ClassVar

from mtl_runner.registry import Registry

BACKBONES: Registry[type["Backbone"]] = Registry("backbone")


class Backbone:
    """A `keras.applications` model without its top, with its own input preprocessing.

    Subclasses set `application` (the constructor's name in `keras.applications`),
    `preprocess` (the `preprocess_input` mode: "caffe", "tf", "torch" or "none" when the
    application normalizes inside the model) and `min_size` (smallest input side).
    """

    name: ClassVar[str]
    application: ClassVar[str]
    preprocess: ClassVar[str]
    min_size: ClassVar[int] = 32

    @classmethod
    def build(cls, input_shape: tuple[int, int, int], weights: str | None, pooling: str):
        """The application model, named "backbone", with ImageNet weights or none.

        Args:
            input_shape: (height, width, channels).
            weights: "imagenet" or None.
            pooling: "avg" or "max".
        """
        import keras

        constructor = getattr(keras.applications, cls.application)
        return constructor(include_top=False, weights=weights, input_shape=input_shape,
                           pooling=pooling, name="backbone")
