"""Which of a network's layers and variables are shared by every task and which belong to one
task's head: the one rule that training, the fine-tuning stages and `mtl doctor` use.

A network is read at the level where its parts are visible: the layers of the model itself,
with an image model's decoder opened up (its trunk and heads are the network's own) and its
encoder kept whole (the backbone). Each of those layers is then

- a task's head: the task's output layer, named after the task, and the `<task>_dense_i` /
  `<task>_dropout_i` layers below it (`models.build.build_head`);
- the backbone: the encoder of an image model (preprocessing and the pretrained network);
- input preprocessing: the model's inputs and the layers `models.inputs` and `models.images`
  put in front of the trunk (imputation, normalization, one-hot lookups, augmentation, pixel
  flattening);
- the trunk: everything else, task gates and columns inside the trunk included (see each
  trunk module for which of its layers serve one task).
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from mtl_runner.models.images import DECODER, ENCODER

# names of the layers models.inputs and models.images build in front of the trunk
INPUT_LAYERS = frozenset({"numeric", "impute", "normalize", "missing_indicator", "features",
                          "augment", "rescale", "pixels"})


def head_owner(layer_name: str, task_names: list[str]) -> str | None:
    """The task whose head a layer belongs to (`<task>`, `<task>_dense_i`, `<task>_dropout_i`)."""
    for task in task_names:
        if layer_name == task or re.fullmatch(rf"{re.escape(task)}_(dense|dropout)_\d+", layer_name):
            return task
    return None


def mentions_task(layer_name: str, task_names: list[str]) -> bool:
    """Whether a trunk layer's name carries a task name (a task's gate or column)."""
    return any(f"_{task}_" in f"_{layer_name}_" for task in task_names)


def is_input_layer(layer_name: str) -> bool:
    """Whether a layer is input preprocessing (it sits in front of the trunk)."""
    return layer_name in INPUT_LAYERS or layer_name.endswith("_onehot")


@dataclasses.dataclass
class NetworkParts:
    """A network's layers by part.

    Attributes:
        shared: every layer outside the task heads, in the network's topological order
            (input preprocessing, backbone and trunk together).
        heads: each task's head layers, in task order, each in topological order.
        inputs: the input preprocessing layers among `shared`.
        backbone: the encoder among `shared` (image models with a backbone; else empty).
    """

    shared: list
    heads: dict[str, list]
    inputs: list
    backbone: list

    @property
    def trunk(self) -> list:
        """The shared layers that are neither input preprocessing nor the backbone."""
        other = {id(layer) for layer in self.inputs + self.backbone}
        return [layer for layer in self.shared if id(layer) not in other]

    def groups(self) -> dict[str, list]:
        """`inputs`, `backbone`, `trunk` and `head <task>` with their layers, empty parts
        left out (the rows of `mtl doctor`'s parameter table)."""
        groups = {"inputs": self.inputs, "backbone": self.backbone, "trunk": self.trunk,
                  **{f"head {task}": layers for task, layers in self.heads.items()}}
        return {name: layers for name, layers in groups.items()
                if any(layer.weights for layer in layers)}


def network_layers(network: keras.Model) -> list:
    """The network's layers at the level where its parts are visible: the decoder of an image
    model is opened up, every other layer (the encoder included) is one block."""
    layers = []
    for layer in network.layers:
        if layer.name == DECODER and isinstance(layer, keras.Model):
            layers.extend(layer.layers)
        else:
            layers.append(layer)
    return layers


def network_parts(network: keras.Model, task_names: list[str]) -> NetworkParts:
    """The network's layers as shared ones (inputs, backbone, trunk) and each task's head.

    Args:
        network: the multi-task network (or an image model's decoder alone).
        task_names: the tasks, whose heads are named after them.

    Returns:
        A `NetworkParts`.
    """
    parts = NetworkParts(shared=[], heads={task: [] for task in task_names}, inputs=[], backbone=[])
    for layer in network_layers(network):
        owner = head_owner(layer.name, task_names)
        if owner is not None:
            parts.heads[owner].append(layer)
            continue
        parts.shared.append(layer)
        if layer.name == ENCODER:
            parts.backbone.append(layer)
        elif isinstance(layer, keras.layers.InputLayer) or is_input_layer(layer.name):
            parts.inputs.append(layer)
    return parts


def parameter_count(layers: list, trainable: bool = False) -> int:
    """How many numbers the layers' weights hold (only the trainable ones with `trainable`);
    a variable two layers share counts once."""
    seen: dict[int, int] = {}
    for layer in layers:
        for weight in layer.trainable_weights if trainable else layer.weights:
            seen[id(weight)] = math.prod(int(d) for d in weight.shape)
    return sum(seen.values())


def split_variables(network: keras.Model, task_names: list[str]):
    """The network's trainable variables as (shared, heads by task, last shared layer's).

    Shared variables are every trainable variable outside the task heads (trunk, task gates and
    columns inside the trunk included). The last shared layer is the last layer, in the
    network's topological order, with trainable weights that belongs to no task.
    """
    parts = network_parts(network, task_names)
    seen: set[int] = set()

    def fresh(layer) -> list:
        new = [v for v in layer.trainable_variables if id(v) not in seen]
        seen.update(id(v) for v in new)
        return new

    shared: list = []
    last: list = []
    for layer in parts.shared:
        variables = fresh(layer)
        shared.extend(variables)
        if variables and not mentions_task(layer.name, task_names):
            last = variables
    heads = {task: [v for layer in layers for v in fresh(layer)]
             for task, layers in parts.heads.items()}
    return shared, heads, last
