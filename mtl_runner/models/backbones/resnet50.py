"""`resnet50`: keras.applications.ResNet50 as a backbone."""

from mtl_runner.models.backbones.base import BACKBONES, Backbone


@BACKBONES.register("resnet50")
class Resnet50(Backbone):
    """He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.

    Inputs are RGB values in [0, 255]; `preprocess_input` mode "caffe" is applied inside the model.
    """

    application = "ResNet50"
    preprocess = "caffe"
