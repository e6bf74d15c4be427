"""Task types: how labels are encoded, which head, loss and metrics a task gets.

One module per type; each registers itself in `TASK_TYPES`. Importing this package never
imports TensorFlow: Keras objects are built inside methods.
"""

from mtl_runner.tasks.base import TASK_TYPES, EncodedLabels, TaskType
from mtl_runner.tasks import binary, classification, multilabel, regression  # noqa: F401  (registers)

__all__ = ["TASK_TYPES", "EncodedLabels", "TaskType"]
