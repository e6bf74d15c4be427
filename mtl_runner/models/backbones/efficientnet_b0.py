"""`efficientnet_b0`: keras.applications.EfficientNetB0 as a backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("efficientnet_b0")
class EfficientnetB0(Backbone):
    """Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019 (rescales inside the model).

    Inputs are RGB values in [0, 255]; `preprocess_input` mode "none" is applied inside the model.
    """

    application = "EfficientNetB0"
    preprocess = "none"
