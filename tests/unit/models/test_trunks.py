"""The multi-task trunks (mmoe, cgc, ple, cross_stitch) and their mixing layers."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pydantic
import pytest
import yaml

from mtl_runner.cli import cli
from mtl_runner.models.mixing import CrossStitch, GatedSum
from mtl_runner.models.trunks import TRUNKS
from tests.conftest import REPO

SMALL = {
    "mmoe": {"num_experts": 3, "units": [4]},
    "cgc": {"num_shared_experts": 2, "num_task_experts": 1, "units": [4]},
    "ple": {"num_levels": 2, "num_shared_experts": 2, "num_task_experts": 1, "units": [4]},
    "cross_stitch": {"units": [4, 4]},
}
TASKS = {2: ["a", "b"], 3: ["a", "b", "c"]}


def tiny_model(trunk: str, num_tasks: int = 2, **overrides) -> keras.Model:
    """Input of width 5 → trunk → one Dense(1) head per task, compiled with MSE."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    cls = TRUNKS.get(trunk)
    config = cls.Config(**{**SMALL[trunk], **overrides})
    features = keras.Input((5,), name="features")
    tasks = TASKS[num_tasks]
    representations = cls(config).build(features, tasks)
    assert sorted(representations) == tasks
    outputs = {task: keras.layers.Dense(1, name=task)(representations[task]) for task in tasks}
    model = keras.Model(features, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss={task: "mse" for task in tasks})
    return model


def tiny_data(num_tasks: int = 2):
    rng = np.random.default_rng(0)
    x = rng.random((32, 5)).astype("float32")
    y = {task: rng.random((32, 1)).astype("float32") for task in TASKS[num_tasks]}
    return x, y


def trunk_weights(model: keras.Model, tasks: list[str]) -> list:
    return [w for layer in model.layers if layer.name not in tasks
            for w in layer.trainable_weights]


@pytest.mark.parametrize("num_tasks", [2, 3])
@pytest.mark.parametrize("trunk", sorted(SMALL))
def test_one_step_changes_every_trunk_weight(trunk, num_tasks):
    model = tiny_model(trunk, num_tasks)
    x, y = tiny_data(num_tasks)
    weights = trunk_weights(model, TASKS[num_tasks])
    assert weights, "the trunk has trainable weights"
    before = [w.numpy().copy() for w in weights]
    loss = model.train_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(loss)
    unchanged = [w.path for w, old in zip(weights, before) if np.array_equal(w.numpy(), old)]
    assert not unchanged


def test_trunk_weight_counts():
    # the expected layers, counted: an expert of units [4] on 5 inputs has 5*4+4 weights
    expert, tasks = 5 * 4 + 4, 2
    mmoe = tiny_model("mmoe")
    gates = tasks * (5 * 3 + 3)
    assert sum(w.numpy().size for w in trunk_weights(mmoe, TASKS[2])) == 3 * expert + gates
    cgc = tiny_model("cgc")
    gates = tasks * (5 * 3 + 3)  # each task's gate weighs its 1 expert and the 2 shared ones
    assert sum(w.numpy().size for w in trunk_weights(cgc, TASKS[2])) == 4 * expert + gates
    cross = tiny_model("cross_stitch")
    columns = tasks * ((5 * 4 + 4) + (4 * 4 + 4))
    assert sum(w.numpy().size for w in trunk_weights(cross, TASKS[2])) == columns + 2 * tasks**2


@pytest.mark.parametrize("trunk", ["mmoe", "cgc", "ple"])
def test_gates_are_probability_vectors(trunk):
    model = tiny_model(trunk, 3)
    gates = [layer for layer in model.layers if "_gate_" in layer.name]
    probe = keras.Model(model.input, [layer.output for layer in gates])
    x, _ = tiny_data(3)
    for layer, weights in zip(gates, probe.predict(x, verbose=0)):
        assert weights.shape == (32, layer.units)
        assert np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)


def test_gate_widths():
    # cgc: a task gate weighs its own experts and the shared ones, not other tasks' experts
    cgc = tiny_model("cgc", 3)
    assert {l.name: l.units for l in cgc.layers if "_gate_" in l.name} == \
        {"cgc_gate_a": 3, "cgc_gate_b": 3, "cgc_gate_c": 3}
    # ple: intermediate levels add a shared gate over every expert; the last level is a cgc
    ple = tiny_model("ple", 3)
    widths = {l.name: l.units for l in ple.layers if "_gate_" in l.name}
    assert widths == {"ple_0_gate_a": 3, "ple_0_gate_b": 3, "ple_0_gate_c": 3,
                      "ple_0_gate_shared": 3 * 1 + 2,
                      "ple_1_gate_a": 3, "ple_1_gate_b": 3, "ple_1_gate_c": 3}
    assert len(tiny_model("ple", 2, num_levels=1).layers) == len(tiny_model("cgc", 2).layers)


def test_ple_levels_are_wired_progressively():
    model = tiny_model("ple", 2, num_levels=3)
    # level 1's task experts read task a's gated output of level 0, its shared experts the
    # shared gate's output; level 2 (the last) has no shared gate
    expert = model.get_layer("ple_1_a_expert_0_dense_0")
    assert expert.input is model.get_layer("ple_0_mix_a").output
    shared = model.get_layer("ple_1_shared_expert_0_dense_0")
    assert shared.input is model.get_layer("ple_0_mix_shared").output
    assert model.get_layer("ple_1_gate_a").input is model.get_layer("ple_0_mix_a").output
    names = {layer.name for layer in model.layers}
    assert "ple_1_gate_shared" in names and "ple_2_gate_shared" not in names


def test_gated_sum_values():
    gate = np.array([[0.25, 0.75], [1.0, 0.0]], "float32")
    first = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    second = np.array([[5.0, 6.0], [7.0, 8.0]], "float32")
    result = keras.ops.convert_to_numpy(GatedSum()([gate, first, second]))
    np.testing.assert_allclose(result, [[4.0, 5.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="one expert per gate output"):
        GatedSum()([gate, first])


def test_mmoe_is_the_gated_sum_of_its_experts():
    model = tiny_model("mmoe", 2)
    x, _ = tiny_data(2)
    probe = keras.Model(model.input, {
        "gate": model.get_layer("mmoe_gate_b").output,
        "experts": [model.get_layer(f"mmoe_expert_{i}_dense_0").output for i in range(3)],
        "mix": model.get_layer("mmoe_mix_b").output})
    out = probe.predict(x, verbose=0)
    expected = sum(out["gate"][:, [i]] * out["experts"][i] for i in range(3))
    np.testing.assert_allclose(out["mix"], expected, rtol=1e-5, atol=1e-6)


def test_cross_stitch_unit_starts_near_identity():
    unit = CrossStitch(self_weight=0.9)
    columns = [np.full((2, 4), float(i), "float32") for i in range(3)]
    mixed = [keras.ops.convert_to_numpy(c) for c in unit(columns)]
    alpha = unit.alpha.numpy()
    np.testing.assert_allclose(alpha, [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                               rtol=1e-6)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-6)
    # column 1: 0.05 * 0 + 0.9 * 1 + 0.05 * 2
    np.testing.assert_allclose(mixed[1], np.full((2, 4), 1.0), rtol=1e-6)
    np.testing.assert_allclose(mixed[2], np.full((2, 4), 0.05 + 1.8), rtol=1e-6)
    with pytest.raises(ValueError, match="equal shape"):
        CrossStitch()([np.zeros((2, 4), "float32"), np.zeros((2, 3), "float32")])


def test_identity_cross_stitch_reproduces_independent_columns():
    model = tiny_model("cross_stitch", 3, self_weight=1.0)
    x, _ = tiny_data(3)
    for i in range(2):
        np.testing.assert_array_equal(model.get_layer(f"cross_stitch_unit_{i}").alpha.numpy(),
                                      np.eye(3))
    probe = keras.Model(model.input, model.get_layer("b").input)
    column = x
    for i in range(2):  # column b on its own: its two Dense layers, nothing from a or c
        column = model.get_layer(f"cross_stitch_b_dense_{i}")(column)
    np.testing.assert_allclose(probe.predict(x, verbose=0), keras.ops.convert_to_numpy(column),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("trunk", sorted(SMALL))
def test_save_and_load_give_identical_predictions(trunk, tmp_path):
    model = tiny_model(trunk, 3)
    x, y = tiny_data(3)
    model.train_on_batch(x, y)  # move the weights off their initial values
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    expected, got = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    for task in TASKS[3]:
        np.testing.assert_array_equal(got[task], expected[task])


@pytest.mark.parametrize("trunk, values, message", [
    ("mmoe", {"num_experts": 0}, "greater than or equal to 1"),
    ("mmoe", {"units": []}, "at least 1 item"),
    ("mmoe", {"units": [0]}, "greater than 0"),
    ("mmoe", {"num_expert": 4}, "Extra inputs are not permitted"),
    ("cgc", {"num_shared_experts": 0}, "greater than or equal to 1"),
    ("cgc", {"num_task_experts": 0}, "greater than or equal to 1"),
    ("cgc", {"num_levels": 2}, "Extra inputs are not permitted"),
    ("ple", {"num_levels": 0}, "greater than or equal to 1"),
    ("ple", {"dropout": 1.0}, "less than 1"),
    ("cross_stitch", {"self_weight": 1.5}, "less than or equal to 1"),
    ("cross_stitch", {"num_experts": 2}, "Extra inputs are not permitted"),
])
def test_config_rejects_bad_values(trunk, values, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        TRUNKS.get(trunk).Config(**values)


def test_config_defaults():
    assert TRUNKS.get("mmoe").Config().model_dump() == {
        "type": "mmoe", "num_experts": 4, "units": [64, 32], "activation": "relu", "dropout": 0.0}
    assert TRUNKS.get("cgc").Config().model_dump() == {
        "type": "cgc", "num_shared_experts": 2, "num_task_experts": 2, "units": [64, 32],
        "activation": "relu", "dropout": 0.0}
    assert TRUNKS.get("ple").Config().num_levels == 2
    assert TRUNKS.get("cross_stitch").Config().self_weight == 0.9


def test_importing_the_trunks_does_not_import_keras():
    code = ("import sys, mtl_runner.models.trunks; "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"


def test_validate_rejects_a_bad_trunk_value(runner):
    outcome = runner.invoke(cli, ["validate", str(REPO / "recipes" / "quickstart.yaml"),
                                  "--set", "model.trunk.type=mmoe",
                                  "--set", "model.trunk.num_experts=0"])
    assert outcome.exit_code == 2, outcome.output
    assert "greater than or equal to 1" in outcome.output and "Traceback" not in outcome.output


@pytest.mark.slow  # tests/integration/test_method_matrix.py covers it too; both run in make test-slow
@pytest.mark.parametrize("trunk", sorted(SMALL))
def test_quickstart_trains_one_epoch_with_each_trunk(trunk, runner, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    outcome = runner.invoke(cli, ["train", "recipes/quickstart.yaml", "--results", str(tmp_path),
                                  "--set", f"model.trunk.type={trunk}",
                                  "--set", "training.epochs=1"])
    assert outcome.exit_code == 0, outcome.output
    [metrics] = list(tmp_path.glob("*/metrics.csv"))
    resolved = yaml.safe_load((metrics.parent / "recipe.yaml").read_text())
    assert resolved["model"]["trunk"]["type"] == trunk
