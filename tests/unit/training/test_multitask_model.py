"""The multi-task training step: masks, log names, the CLI's history, distribution."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO
from tests.unit.weighting.tiny_model import ROWS, dataset, make_batch, make_trainer

STRATEGIES = ["static", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "cagrad", "rlw"]


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    import keras

    keras.backend.clear_session()


def test_masked_examples_add_no_loss_and_no_gradient():
    import tensorflow as tf

    trainer, network, tasks = make_trainer("static")
    half = (np.arange(ROWS) < ROWS // 2).astype("float32")
    x, y, mask = make_batch(tasks, masks={"size": half})
    changed = {**y, "size": y["size"].copy()}
    changed["size"][ROWS // 2:] += 100.0  # labels of the masked examples: must not matter

    def loss_and_gradients(labels):
        with tf.GradientTape() as tape:
            losses = trainer.task_losses(labels, trainer(x, training=False), mask)
        return losses.numpy(), [g.numpy() for g in tape.gradient(losses[0], network.trainable_variables)
                                if g is not None]

    (losses, grads), (losses_changed, grads_changed) = loss_and_gradients(y), loss_and_gradients(changed)
    np.testing.assert_allclose(losses, losses_changed)
    for g, h in zip(grads, grads_changed):
        np.testing.assert_allclose(g, h)

    nothing = {**mask, "size": np.zeros(ROWS, "float32")}
    with tf.GradientTape() as tape:
        losses = trainer.task_losses(y, trainer(x, training=False), nothing)
    assert losses.numpy()[0] == 0.0
    assert all(g is None or not np.any(g.numpy())
               for g in tape.gradient(losses[0], network.trainable_variables))


@pytest.mark.parametrize("name", ["pcgrad", "mgda", "uncertainty"])
def test_a_task_without_labels_in_the_batch_leaves_its_head_alone(name):
    trainer, network, tasks = make_trainer(name)
    batch = make_batch(tasks, masks={"kind": np.zeros(ROWS, "float32")})
    before = network.get_layer("kind").kernel.numpy().copy()
    logs = trainer.fit(dataset(batch), epochs=1, verbose=0, shuffle=False).history
    np.testing.assert_allclose(network.get_layer("kind").kernel.numpy(), before)
    assert logs["kind_loss"][0] == 0.0 and math.isfinite(logs["loss"][0])


def test_log_names_match_plain_compile_and_validation_mirrors_them():
    trainer, _, tasks = make_trainer("pcgrad")
    batch = make_batch(tasks)
    logs = trainer.fit(dataset(batch, 16), validation_data=dataset(batch, 16), epochs=1,
                       verbose=0, shuffle=False).history
    expected = {"loss", "size_loss", "size_mae", "size_rmse", "size_r2", "kind_loss",
                "kind_accuracy", "kind_macro_f1", "flag_loss", "flag_accuracy", "flag_f1", "flag_auc"}
    weights = {f"weight_{t}" for t in tasks}
    assert set(logs) == expected | weights | {f"val_{k}" for k in expected}
    total = logs["size_loss"][0] + logs["kind_loss"][0] + logs["flag_loss"][0]
    assert logs["loss"][0] == pytest.approx(total, rel=1e-5)


def test_early_stopping_and_restoring_work_through_the_wrapper():
    import keras

    trainer, _, tasks = make_trainer("mgda", learning_rate=0.0)
    batch = make_batch(tasks)
    stop = keras.callbacks.EarlyStopping(monitor="val_kind_accuracy", mode="max", patience=1,
                                         restore_best_weights=True)
    logs = trainer.fit(dataset(batch), validation_data=dataset(batch), epochs=5, verbose=0,
                       shuffle=False, callbacks=[stop]).history
    assert len(logs["loss"]) == 2  # nothing changes with a zero learning rate: stops at once


def test_telemetry_is_measured_every_n_steps_and_at_each_epoch_start():
    trainer, _, tasks = make_trainer("static", telemetry=True, telemetry_every=100)
    logs = trainer.fit(dataset(make_batch(tasks), 8), epochs=2, verbose=0, shuffle=False).history
    for epoch in range(2):
        assert -1.0 <= logs["grad_cosine"][epoch] <= 1.0
        assert 0.0 <= logs["grad_conflict"][epoch] <= 1.0


def test_the_saved_network_holds_the_trained_weights(tmp_path):
    import keras

    trainer, network, tasks = make_trainer("uncertainty")
    trainer.fit(dataset(make_batch(tasks)), epochs=1, verbose=0, shuffle=False)
    network.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.get_layer("shared_dense_0").kernel.numpy(),
                               network.get_layer("shared_dense_0").kernel.numpy())
    assert "log_variance" not in {w.name for w in loaded.weights}


def test_last_shared_layer_skips_heads_and_task_gates():
    import keras

    from mtl_runner.models.parts import split_variables

    inputs = keras.Input(shape=(3,))
    expert = keras.layers.Dense(4, name="mmoe_expert_0")(inputs)
    gate = keras.layers.Dense(4, name="mmoe_gate_body_mass")(expert)
    head = keras.layers.Dense(2, name="body_mass_dense_0")(gate)
    network = keras.Model(inputs, {"body_mass": keras.layers.Dense(1, name="body_mass")(head)})
    shared, heads, last = split_variables(network, ["body_mass"])
    assert [v.path.split("/")[0] for v in shared] == ["mmoe_expert_0"] * 2 + ["mmoe_gate_body_mass"] * 2
    assert {v.path.split("/")[0] for v in heads["body_mass"]} == {"body_mass_dense_0", "body_mass"}
    assert [v.path.split("/")[0] for v in last] == ["mmoe_expert_0"] * 2


@pytest.mark.parametrize("name", STRATEGIES)
def test_cli_history_has_task_weights(name, runner, tmp_path):
    from mtl_runner.cli import cli

    result = runner.invoke(cli, ["train", str(REPO / "recipes/quickstart.yaml"), "--results",
                                 str(tmp_path), "--set", f"weighting.name={name}",
                                 "--set", "training.epochs=1"])
    assert result.exit_code == 0, result.output
    (history,) = tmp_path.glob("*/history.csv")
    frame = pd.read_csv(history)
    for task in ("species", "sex", "body_mass"):
        assert frame[f"weight_{task}"].notna().all()
        assert f"val_{task}_loss" in frame
    assert "grad_cosine" not in frame  # telemetry is off by default
    assert np.isfinite(frame["loss"]).all()


def test_weighting_modules_do_not_import_tensorflow():
    code = ("import sys\nimport mtl_runner.weighting, mtl_runner.recipe.schema\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.slow  # make test runs tests/integration/test_devices.py (pcgrad) instead
def test_training_under_mirrored_strategy_on_two_devices():
    code = textwrap.dedent("""
        import numpy as np
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from mtl_runner.training.multitask_model import MultiTaskModel
        from mtl_runner.weighting import WEIGHTINGS
        from tests.unit.weighting.tiny_model import dataset, make_batch, make_network, make_tasks
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        for name in ["uncertainty", "gradnorm", "dwa"]:
            tasks = make_tasks()
            with strategy.scope():
                cls = WEIGHTINGS.get(name)
                weighting = cls(cls.Config(name=name, telemetry=True), {t: 1.0 for t in tasks})
                network = make_network(tasks)
                trainer = MultiTaskModel(network, tasks, weighting)
                trainer.compile(optimizer=keras.optimizers.SGD(0.05))
            before = network.get_layer("shared_dense_0").kernel.numpy().copy()
            batch = make_batch(tasks)
            validation = dataset(batch, 16) if name == "gradnorm" else None  # slow: once only
            logs = trainer.fit(dataset(batch, 16), validation_data=validation,
                               epochs={"uncertainty": 1, "gradnorm": 2, "dwa": 3}[name],
                               verbose=0, shuffle=False).history
            assert np.isfinite(logs["loss"]).all(), logs
            assert validation is None or np.isfinite(logs["val_loss"]).all(), logs
            assert not np.allclose(network.get_layer("shared_dense_0").kernel.numpy(), before)
            assert all(f"weight_{t}" in logs for t in tasks)
        print("ok", strategy.num_replicas_in_sync)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().endswith("ok 2"), out.stderr[-3000:]


@pytest.mark.parametrize("name", ["gradnorm", "pcgrad", "mgda"])
def test_a_gradient_level_strategy_with_nothing_shared_trains_each_head_on_its_own_loss(name):
    """A heads-only stage (the trunk frozen, or cached backbone features with no trunk) leaves
    the strategy nothing to combine: each head follows its own loss, weight 1 (it failed with
    'ConcatV2 ... length 0')."""
    trainer, network, tasks = make_trainer(name)
    network.get_layer("shared_dense_0").trainable = False
    shared_before = network.get_layer("shared_dense_0").kernel.numpy().copy()
    head_before = network.get_layer("kind").kernel.numpy().copy()
    logs = trainer.fit(dataset(make_batch(tasks), 8), epochs=1, verbose=0).history
    assert math.isfinite(logs["loss"][0])
    np.testing.assert_array_equal(network.get_layer("shared_dense_0").kernel.numpy(), shared_before)
    assert not np.allclose(network.get_layer("kind").kernel.numpy(), head_before)
    assert [logs[f"weight_{t}"][0] for t in tasks] == [1.0, 1.0, 1.0]
