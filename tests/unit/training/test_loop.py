"""mtl's training loop against Keras' `fit`, steps per execution, early stopping against Keras'
callback, and the `TrainingState` through a checkpoint."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from tests.unit.weighting.tiny_model import INFOS, UNITS, make_batch, make_tasks

STEPS, EPOCHS = 4, 6


@pytest.fixture(autouse=True)
def _determinism():
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    yield
    keras.backend.clear_session()


def make_trainer(strategy: str = "dwa", seed: int = 0):
    """A compiled MultiTaskModel whose trunk has dropout (so random state matters)."""
    import keras

    from mtl_runner.training.multitask_model import MultiTaskModel
    from mtl_runner.weighting import WEIGHTINGS

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tasks = make_tasks()
    inputs = keras.Input(shape=(5,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="shared_dense_0")(inputs)
    hidden = keras.layers.Dropout(0.3, name="shared_dropout_0")(hidden)
    outputs = {name: keras.layers.Dense(UNITS[name], activation=task.activation, name=name)(hidden)
               for name, task in tasks.items()}
    network = keras.Model({"x": inputs}, outputs)
    cls = WEIGHTINGS.get(strategy)
    weighting = cls(cls.Config(name=strategy), {name: 1.0 for name in tasks})
    trainer = MultiTaskModel(network, tasks, weighting, {name: 1.0 for name in tasks})
    trainer.compile(optimizer=keras.optimizers.Adam(0.01),
                    weighted_metrics={n: t.keras_metrics(INFOS[n]) for n, t in tasks.items()})
    trainer.optimizer.build(trainer.update_variables())  # as compile_for_training does
    return trainer, network, tasks


def datasets(tasks, shuffle: bool = True):
    """An endless training dataset of STEPS batches per epoch, and a validation one."""
    import tensorflow as tf

    train = tf.data.Dataset.from_tensor_slices(make_batch(tasks, rows=32, seed=1))
    if shuffle:
        train = train.shuffle(32, seed=3, reshuffle_each_iteration=True)
    validation = tf.data.Dataset.from_tensor_slices(make_batch(tasks, rows=20, seed=2)).batch(8)
    return train.batch(8).repeat(), validation


def stopping_config(patience: int = 1):
    from mtl_runner.recipe.schema import EarlyStoppingConfig

    return EarlyStoppingConfig(monitor="val_loss", patience=patience, restore_best_weights=True)


def loop_history(trainer, tasks, run, steps_per_execution: int = 1, early=None, state=None,
                 last_epoch: int = EPOCHS, checkpoint_every_steps=None, train=None):
    """Trains with mtl's loop; returns (history frame, state, early stopping)."""
    from mtl_runner.training.checkpoints import Checkpointer
    from mtl_runner.training.history import HistoryWriter
    from mtl_runner.training.loop import Loop, Observers, StageData
    from mtl_runner.training.state import TrainingState

    default_train, validation = datasets(tasks)
    state = state or TrainingState()
    history = HistoryWriter(run)
    checkpointer = Checkpointer(run, trainer.network, trainer, STEPS, 0.0, checkpoint_every_steps,
                                early)
    Loop(trainer, steps_per_execution).fit(
        state, last_epoch, StageData(train or default_train, STEPS, validation, 3),
        Observers(history, checkpointer, early))
    if early is not None:
        early.restore(trainer)
    return pd.DataFrame(history.rows), state, early


def new_run(tmp_path, name: str):
    from mtl_runner.results import RunDirectory

    return RunDirectory.create(tmp_path, name)


@pytest.mark.parametrize("strategy", ["dwa", "pcgrad"])
def test_the_loop_reproduces_keras_fit_on_one_device(strategy, tmp_path):
    """Same network, data, dropout seeds and early stopping: every epoch's logs, the epoch it
    stops at and the restored best weights equal Keras' `fit` to 1e-6."""
    import keras

    from mtl_runner.training.early_stopping import EarlyStopping

    trainer, network, tasks = make_trainer(strategy)
    train, validation = datasets(tasks)
    keras_stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                               restore_best_weights=True)
    fitted = trainer.fit(train, validation_data=validation, epochs=EPOCHS, steps_per_epoch=STEPS,
                         callbacks=[keras_stop], verbose=0).history
    expected_weights = network.get_weights()

    trainer, network, tasks = make_trainer(strategy)
    ours, state, early = loop_history(trainer, tasks, new_run(tmp_path, "loop"),
                                      early=EarlyStopping(stopping_config()))
    assert len(ours) == len(fitted["loss"]) >= 2
    assert state.stopped == (len(ours) < EPOCHS) and early.best_epoch == keras_stop.best_epoch
    for column, values in fitted.items():
        np.testing.assert_allclose(ours[column], values, rtol=1e-6, atol=1e-6, err_msg=column)
    for ours_w, theirs in zip(network.get_weights(), expected_weights):
        np.testing.assert_allclose(ours_w, theirs, rtol=1e-6, atol=1e-6)


def test_several_steps_per_execution_train_the_same_steps(tmp_path):
    """3 steps per call over 4-step epochs (3 + 1): the same history as one step per call."""
    trainer, _, tasks = make_trainer("pcgrad")
    one, *_ = loop_history(trainer, tasks, new_run(tmp_path, "one"), last_epoch=3)
    trainer, _, tasks = make_trainer("pcgrad")
    three, *_ = loop_history(trainer, tasks, new_run(tmp_path, "three"), steps_per_execution=3,
                             last_epoch=3)
    assert len(one) == len(three) == 3
    pd.testing.assert_frame_equal(one, three, rtol=1e-6, atol=1e-6)


def test_the_training_state_goes_through_a_checkpoint(tmp_path):
    """Train 3 epochs, checkpoint; a fresh model restored from the checkpoint and its state
    continues exactly as the original does (weights, optimizer, dropout state, early stopping's
    progress and best weights), and state.json records that state."""
    from mtl_runner.training.checkpoints import ResumePoint, read_best_weights, restore
    from mtl_runner.training.early_stopping import EarlyStopping

    run = new_run(tmp_path, "run")
    trainer, network, tasks = make_trainer("uncertainty")
    train, _ = datasets(tasks, shuffle=False)  # every epoch the same order: any epoch starts alike
    early = EarlyStopping(stopping_config(patience=10))
    first, state, early = loop_history(trainer, tasks, run, early=early, last_epoch=3, train=train)
    assert (state.epoch, state.step, state.stopped) == (3, 0, False)

    saved = ResumePoint.read(run).latest
    assert saved.to_dict() == state.to_dict()
    assert saved.early_stopping["best_epoch"] == early.best_epoch
    assert saved.early_stopping["best"] == pytest.approx(first["val_loss"].min())
    for a, b in zip(read_best_weights(run, saved), early.best_weights):
        np.testing.assert_array_equal(a, b)

    other, other_network, _ = make_trainer("uncertainty", seed=7)  # other initial weights
    restore(run, saved, other_network, other)
    resumed_early = EarlyStopping(stopping_config(patience=10), saved.early_stopping,
                                  read_best_weights(run, saved))

    rest, *_ = loop_history(trainer, tasks, run, early=early, state=state, last_epoch=5, train=train)
    again, resumed_state, _ = loop_history(other, tasks, new_run(tmp_path, "resumed"),
                                           early=resumed_early, state=saved, last_epoch=5,
                                           train=train)
    assert again["epoch"].tolist() == rest["epoch"].tolist() == [4, 5]
    pd.testing.assert_frame_equal(again, rest, rtol=1e-6, atol=1e-6)
    assert resumed_state.to_dict() | {"checkpoint": ""} == state.to_dict() | {"checkpoint": ""}


class FakeModel:
    """What Keras' EarlyStopping touches: weights (here the epoch they were taken at)."""

    def __init__(self):
        self.epoch, self.stop_training, self.restored = 0, False, None

    def get_weights(self):
        return [self.epoch]

    def set_weights(self, weights):
        self.restored = weights


@pytest.mark.parametrize("seed", range(40))
def test_early_stopping_decides_as_keras_callback_does(seed):
    import keras

    from mtl_runner.training.early_stopping import EarlyStopping

    rng = np.random.default_rng(seed)
    monitor = ["val_loss", "val_kind_accuracy"][seed % 2]
    patience, min_delta = int(rng.integers(0, 4)), float(rng.choice([0.0, 0.01, 0.1]))
    values = np.round(rng.normal(size=12), int(rng.integers(1, 3))).astype("float32")  # ties too
    theirs = keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta,
                                           mode="min" if seed % 2 == 0 else "max",
                                           restore_best_weights=True)
    model = FakeModel()
    theirs.set_model(model)
    theirs.on_train_begin()
    config = types.SimpleNamespace(monitor=monitor, patience=patience, min_delta=min_delta,
                                   restore_best_weights=True)
    ours, our_stop = EarlyStopping(config), None
    for epoch, value in enumerate(values):
        model.epoch = epoch
        theirs.on_epoch_end(epoch, {monitor: float(value)})
        if ours.update(epoch, {monitor: float(value)}, model.get_weights):
            our_stop = epoch
            break
    their_stop = theirs.stopped_epoch if model.stop_training else None
    assert our_stop == their_stop
    assert (ours.best_epoch, ours.best) == (theirs.best_epoch, pytest.approx(float(theirs.best)))
    assert ours.best_weights == theirs.best_weights
