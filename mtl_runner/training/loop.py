"""The training loop: one for every case — one device, MirroredStrategy, several workers.

Each step is `MultiTaskModel.train_step`, run through `strategy.run` on a dataset distributed
with `strategy.experimental_distribute_dataset` (the recipe of TensorFlow's "Custom training
loop with Keras and MultiWorkerMirroredStrategy" tutorial). Keras' `fit` fails on its first step
under `MultiWorkerMirroredStrategy` (keras-team/keras#20585, #20329) and, under MirroredStrategy,
averages the replicas' own validation metrics (wrong for AUC, F1, R²), so mtl drives the step
itself. On one device this loop reproduces `fit`'s history exactly (tests/unit/training/test_loop.py).

The loop is driven by a `TrainingState` (stage, epoch, step, early stopping's progress): it
advances the state, and after each execution of steps and each epoch it acts in a fixed order —

* after steps: a step checkpoint when due, the callbacks' `on_train_batch_end`, then a stop
  asked by a signal (a checkpoint at that step first);
* after an epoch: the weighting strategy's epoch hook, history.csv, a NaN stop, early
  stopping, the epoch checkpoint, the callbacks' `on_epoch_end`, a signal's stop, the epoch line.

A resumed state continues mid-epoch or mid-stage with nothing special: the dataset's epochs are a
pure function of (seed, epoch), early stopping's progress comes with the state.

Epoch logs are read from the model's metrics in cross-replica context, where their on-read
variables are summed over every replica of every worker: every worker sees the same logs and
takes the same decisions (early stopping, NaN stop), which keeps the workers in lockstep.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from mtl_runner.errors import RunError
from mtl_runner.training import interrupts
from mtl_runner.training.history import single_task_logs
from mtl_runner.training.state import TrainingState


def pythonify(logs: dict) -> dict:
    return {name: float(keras.ops.convert_to_numpy(value)) for name, value in logs.items()}


@dataclasses.dataclass
class StageData:
    """A stage's data: an endless training dataset starting at the state's epoch and step, and
    a finite validation dataset (None without a validation split)."""

    train: object
    steps: int
    validation: object = None
    validation_steps: int = 0


@dataclasses.dataclass
class Observers:
    """What the loop records and decides around the steps (see the module docstring)."""

    history: object  # HistoryWriter
    checkpointer: object  # Checkpointer
    early: object = None  # EarlyStopping
    callbacks: list = dataclasses.field(default_factory=list)  # Keras callbacks (tracking, ...)
    epoch_line: object = None  # EpochLine, when no progress bar is shown
    single_task: str | None = None  # a one-task model's logs get the task's prefix
    progress_bar: bool = False


class Loop:
    """Trains `trainer` (a compiled `MultiTaskModel`) for the epochs of one stage.

    Args:
        trainer: the compiled model; its `distribute_strategy` runs the steps.
        steps_per_execution: steps run by one call of the compiled function (as `compile`'s).
        workers: processes training together (several: errors name the missing worker).

    Example:
        >>> loop = Loop(trainer)
        >>> loop.fit(state, last_epoch=5, data=StageData(train, 20, validation, 3),
        ...          observers=Observers(history, checkpointer))
    """

    def __init__(self, trainer: keras.Model, steps_per_execution: int = 1, workers: int = 1):
        import tensorflow as tf

        self.trainer = trainer
        self.strategy = trainer.distribute_strategy
        self.steps_per_execution = steps_per_execution
        self.workers = workers
        strategy = self.strategy
        train_step, test_step = trainer.train_step, trainer.test_step
        if trainer.jit_compile:  # XLA compiles the step, as `fit` does
            train_step = tf.function(train_step, jit_compile=True, reduce_retracing=True)
            test_step = tf.function(test_step, jit_compile=True, reduce_retracing=True)

        @tf.function(autograph=False)  # plain Python control flow; strategy.run traces it
        def one_step(iterator):
            strategy.run(train_step, args=(next(iterator),))

        @tf.function(autograph=False)
        def several_steps(iterator, count):
            def body(i):
                strategy.run(train_step, args=(next(iterator),))
                return (i + 1,)

            tf.while_loop(lambda i: i < count, body, (tf.constant(0),))

        @tf.function(autograph=False)
        def evaluation_step(iterator):
            strategy.run(test_step, args=(next(iterator),))

        self.one_step, self.several_steps, self.evaluation_step = one_step, several_steps, evaluation_step

    def run_steps(self, iterator, count: int) -> None:
        if count == 1:
            self.one_step(iterator)
        else:
            self.several_steps(iterator, count)

    def fit(self, state: TrainingState, last_epoch: int, data: StageData,
            observers: Observers) -> dict:
        """Trains from `state` until epoch `last_epoch`, early stopping, a NaN loss, or a
        callback's `stop_training`; `state` is advanced as training goes. Returns the last
        epoch's logs ({} when no epoch was left)."""
        import tensorflow as tf

        try:
            return self._fit(state, last_epoch, data, observers)
        except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as error:
            if self.workers < 2:
                raise
            reason = re.sub(r"^\{\{.*?\}\}\s*", "", str(error).splitlines()[0])[:200]
            raise RunError(f"a worker stopped answering ({reason}); every worker must run until "
                           "the end. Start them all again with mtl train --resume <run id>") from None

    def _fit(self, state: TrainingState, last_epoch: int, data: StageData,
             observers: Observers) -> dict:
        trainer = self.trainer
        trainer.build_from_batch(placeholder_batch(data.train))
        iterator = iter(self.strategy.experimental_distribute_dataset(data.train))
        validation = (self.strategy.experimental_distribute_dataset(data.validation)
                      if data.validation is not None else None)
        callbacks = keras.callbacks.CallbackList(
            observers.callbacks, add_progbar=observers.progress_bar,
            verbose=int(observers.progress_bar), epochs=last_epoch, steps=data.steps, model=trainer)
        trainer.stop_training = False
        logs: dict = {}
        callbacks.on_train_begin()
        interrupts.training(True)
        try:
            while state.epoch < last_epoch and not state.stopped and not trainer.stop_training:
                logs = self.epoch(state, iterator, validation, data, callbacks, observers)
                if not math.isfinite(logs.get("loss", 0.0)):
                    break
        finally:
            interrupts.training(False)
        callbacks.on_train_end(logs)
        return logs

    def epoch(self, state: TrainingState, iterator, validation, data: StageData, callbacks,
              observers: Observers) -> dict:
        """Trains the rest of epoch `state.epoch + 1` and ends it; returns its logs."""
        trainer, epoch = self.trainer, state.epoch
        trainer.reset_metrics()
        trainer.begin_epoch()
        observers.checkpointer.begin_epoch(state)
        if observers.epoch_line is not None:
            observers.epoch_line.begin()
        callbacks.on_epoch_begin(epoch)
        show_loss = observers.progress_bar and self.workers < 2
        while state.step < data.steps:
            count = min(self.steps_per_execution, data.steps - state.step)
            callbacks.on_train_batch_begin(state.step)
            self.run_steps(iterator, count)
            state.step += count
            self.after_steps(state, data.steps, callbacks, observers, show_loss)
        logs = pythonify(trainer.epoch_logs(training=True))
        if validation is not None:
            logs.update({f"val_{k}": v for k, v in
                         self.evaluate(validation, data.validation_steps, callbacks).items()})
        return self.end_epoch(state, logs, callbacks, observers)

    def after_steps(self, state: TrainingState, steps: int, callbacks, observers: Observers,
                    show_loss: bool) -> None:
        # the progress bar's running loss; across workers each read would be a collective that
        # every worker must join, and only the chief shows a bar, so it shows steps only there
        logs = pythonify({"loss": self.trainer.total_loss_tracker.result()}) if show_loss else {}
        inside = state.step < steps  # at an epoch's last step, a stop waits for the epoch's end
        if inside:
            observers.checkpointer.after_step(state)
        callbacks.on_train_batch_end(state.step - 1, logs)
        if inside and interrupts.stop_requested():
            self.stop(state, observers)

    def end_epoch(self, state: TrainingState, logs: dict, callbacks, observers: Observers) -> dict:
        if observers.single_task:
            logs = single_task_logs(logs, observers.single_task)
        epoch = state.epoch
        self.trainer.end_epoch(epoch, logs)
        state.finish_epoch()
        observers.history.write(state.epoch, logs, learning_rate(self.trainer))
        loss = logs.get("loss")
        if observers.early is not None and math.isfinite(loss if loss is not None else 0.0):
            state.stopped = observers.early.update(epoch, logs, self.trainer.get_weights)
        observers.checkpointer.after_epoch(state, loss)
        if interrupts.stop_requested():
            self.stop(state, observers)
        callbacks.on_epoch_end(epoch, logs)
        if observers.epoch_line is not None:
            observers.epoch_line.end(state.epoch, logs)
        return logs

    def stop(self, state: TrainingState, observers: Observers) -> None:
        """A signal asked to stop: a checkpoint at this step (unless one was just saved), then
        the interruption."""
        interrupts.training(False)
        observers.checkpointer.save_unless_saved(state)
        raise KeyboardInterrupt

    def evaluate(self, distributed, steps: int, callbacks) -> dict:
        """One pass over a finite distributed dataset: every worker runs `steps` steps (the
        global batches; a replica whose share of the last one is empty computes nothing)."""
        self.trainer.reset_metrics()
        callbacks.on_test_begin()
        iterator = iter(distributed)
        for step in range(steps):
            callbacks.on_test_batch_begin(step)
            self.evaluation_step(iterator)
            callbacks.on_test_batch_end(step, {})
        logs = pythonify(self.trainer.epoch_logs(training=False))
        callbacks.on_test_end(logs)
        return logs


def placeholder_batch(dataset):
    """A batch of zeros shaped like the dataset's (one row where the batch size is unknown):
    enough to build the metrics, without drawing from the dataset (a new iterator of a dataset
    that reshuffles each iteration would move the training order on)."""
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda spec: tf.zeros([1 if size is None else size for size in spec.shape], spec.dtype),
        dataset.element_spec)


def learning_rate(trainer) -> float:
    return float(keras.ops.convert_to_numpy(trainer.optimizer.learning_rate))
