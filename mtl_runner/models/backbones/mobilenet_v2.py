"""`mobilenet_v2`: keras.applications.MobileNetV2 as a backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("mobilenet_v2")
class MobilenetV2(Backbone):
    """Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018.

    Inputs are RGB values in [0, 255]; `preprocess_input` mode "tf" is applied inside the model.
    """

    application = "MobileNetV2"
    preprocess = "tf"
