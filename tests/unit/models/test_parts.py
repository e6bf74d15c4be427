"""The one shared-or-head rule: which layers the heads own, what a `heads` stage trains."""

from __future__ import annotations

import math

import keras
import pytest

from mtl_runner.models.images import DECODER, ENCODER
from mtl_runner.models.parts import network_parts, parameter_count, split_variables
from mtl_runner.models.trunks import TRUNKS
from mtl_runner.training.stages import set_trainable, trainable_count

TRUNK_CONFIGS = {
    "shared_bottom": {"units": [4, 3], "batch_norm": True},
    "mmoe": {"num_experts": 2, "units": [4, 3]},
    "cgc": {"num_shared_experts": 1, "num_task_experts": 1, "units": [4]},
    "ple": {"num_levels": 2, "num_shared_experts": 1, "num_task_experts": 1, "units": [4]},
    "cross_stitch": {"units": [4, 3]},
}
# the last shared layer each trunk's docstring names (GradNorm's W)
LAST_SHARED = {"shared_bottom": "shared_bn_1", "mmoe": "mmoe_expert_1_dense_1",
               "cgc": "cgc_shared_expert_0_dense_0", "ple": "ple_1_shared_expert_0_dense_0",
               "cross_stitch": "cross_stitch_unit_1"}


def tabular_network(trunk: str, tasks: list[str]) -> keras.Model:
    """Input of width 5 → normalize → trunk → per task Dense(2) `<task>_dense_0` → Dense(1)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    cls = TRUNKS.get(trunk)
    raw = keras.Input((5,), name="x")
    features = keras.layers.Normalization(mean=0.0, variance=1.0, name="normalize")(raw)
    representations = cls(cls.Config(**TRUNK_CONFIGS[trunk])).build(features, tasks)
    outputs = {task: keras.layers.Dense(1, name=task)(
        keras.layers.Dense(2, name=f"{task}_dense_0")(representations[task])) for task in tasks}
    return keras.Model(raw, outputs)


def head_size(width: int) -> int:
    return width * 2 + 2 + 2 * 1 + 1  # Dense(2) on the trunk's output, then Dense(1)


@pytest.mark.parametrize("trunk", sorted(TRUNK_CONFIGS))
def test_heads_are_the_task_layers_and_everything_else_is_shared(trunk):
    tasks = ["a", "b"]
    network = tabular_network(trunk, tasks)
    parts = network_parts(network, tasks)
    assert {t: [layer.name for layer in layers] for t, layers in parts.heads.items()} == {
        "a": ["a_dense_0", "a"], "b": ["b_dense_0", "b"]}
    assert [layer.name for layer in parts.inputs] == ["x", "normalize"]
    # every layer is in exactly one part, and the parts add up to the network
    groups = parts.groups()
    assert sum(parameter_count(layers) for layers in groups.values()) == network.count_params()
    width = 3 if trunk in ("shared_bottom", "mmoe", "cross_stitch") else 4
    assert parameter_count(groups["head a"]) == parameter_count(groups["head b"]) == head_size(width)

    shared, heads, last = split_variables(network, tasks)
    assert sum(math.prod(v.shape) for v in heads["a"]) == head_size(width)
    assert {v.path.split("/")[0] for v in last} == {LAST_SHARED[trunk]}
    assert len(shared) + len(heads["a"]) + len(heads["b"]) == len(network.trainable_variables)


@pytest.mark.parametrize("trunk", sorted(TRUNK_CONFIGS))
def test_a_heads_stage_trains_the_heads_only_and_a_later_stage_thaws_the_trunk(trunk):
    tasks = ["a", "b"]
    network = tabular_network(trunk, tasks)
    everything = trainable_count(network)
    width = 3 if trunk in ("shared_bottom", "mmoe", "cross_stitch") else 4
    set_trainable(network, "heads", tasks)
    assert trainable_count(network) == 2 * head_size(width)
    set_trainable(network, "all", tasks)
    assert trainable_count(network) == everything


def test_a_trunk_layer_that_starts_with_a_task_name_is_not_that_task_s_head():
    # a task called `mmoe` owns `mmoe_dense_0` and `mmoe`, not the experts nor its gate
    network = tabular_network("mmoe", ["mmoe"])
    parts = network_parts(network, ["mmoe"])
    assert [layer.name for layer in parts.heads["mmoe"]] == ["mmoe_dense_0", "mmoe"]
    assert "mmoe_gate_mmoe" in [layer.name for layer in parts.trunk]
    set_trainable(network, "heads", ["mmoe"])
    assert trainable_count(network) == head_size(3)


def image_network(tasks: list[str]) -> keras.Model:
    """An image model's shape without a real backbone: encoder, then a decoder that holds
    the trunk and the heads (as `models.build.build_model` makes it)."""
    keras.backend.clear_session()
    image = keras.Input((4, 4, 3), name="image")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, name="conv")(image))
    encoder = keras.Model(image, pooled, name=ENCODER)
    features = keras.Input((2,), name="features")
    trunk = keras.layers.Dense(3, name="shared_dense_0")(features)
    outputs = {task: keras.layers.Dense(1, name=task)(trunk) for task in tasks}
    decoder = keras.Model({"features": features}, outputs, name=DECODER)
    top = decoder({"features": encoder(image)})
    return keras.Model({"image": image}, {task: top[task] for task in tasks})


def test_an_image_model_s_heads_are_found_inside_its_decoder():
    network = image_network(["a", "b"])
    parts = network_parts(network, ["a", "b"])
    assert [layer.name for layer in parts.backbone] == [ENCODER]
    assert [layer.name for layer in parts.trunk] == ["shared_dense_0"]
    assert [layer.name for layer in parts.inputs] == ["image", "features"]
    assert {name: parameter_count(layers) for name, layers in parts.groups().items()} == {
        "backbone": 3 * 3 * 3 * 2 + 2, "trunk": 2 * 3 + 3, "head a": 4, "head b": 4}
    shared, heads, last = split_variables(network, ["a", "b"])
    assert [v.path.split("/")[0] for v in heads["a"]] == ["a", "a"]
    assert {v.path.split("/")[0] for v in last} == {"shared_dense_0"}
    assert parameter_count([network]) == network.count_params()
