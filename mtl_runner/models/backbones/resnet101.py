"""`resnet101`: keras.applications.ResNet101 as a backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("resnet101")
class Resnet101(Backbone):
    """He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (101 layers).

    Inputs are RGB values in [0, 255]; `preprocess_input` mode "caffe" is applied inside the model.
    """

    application = "ResNet101"
    preprocess = "caffe"
