"""`convnext_tiny`: keras.applications.ConvNeXtTiny as a backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("convnext_tiny")
class ConvnextTiny(Backbone):
    """Liu et al., "A ConvNet for the 2020s", CVPR 2022 (normalizes inside the model).

    Inputs are RGB values in [0, 255]; `preprocess_input` mode "none" is applied inside the model.
    """

    application = "ConvNeXtTiny"
    preprocess = "none"
