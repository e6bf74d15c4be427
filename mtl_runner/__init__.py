"""mtl: a command-line experiment runner for multi-task learning and fine-tuning on Keras."""

__version__ = "0.2.0"
