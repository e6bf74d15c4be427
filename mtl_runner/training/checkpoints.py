"""Checkpoints after epochs (and every N steps), and resuming a run from its last good one.

Each checkpoint holds the network's weights, the optimizer's state, the weighting strategy's
variables and every layer's random-number state (`tf.train.Checkpoint`); the last two are
kept, so a corrupt latest one falls back to the previous. `checkpoints/state.json` says where
the latest one stands: stage, epochs completed, and steps into the next epoch (0 after an
epoch). Checkpoints are numbered by training steps done (`ckpt-<steps>`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import keras

from mtl_runner.errors import RunError
from mtl_runner.results import RunDirectory

FOLDER = "checkpoints"
STATE = "state.json"


@dataclasses.dataclass
class ResumePoint:
    """Where a resumed run picks up: after `epoch`, inside stage `stage`."""

    stage: int
    stage_first_epoch: int
    epoch: int
    checkpoints: list[str]
    step: int = 0  # steps of epoch `epoch + 1` already trained
    early_stopping: dict | None = None  # the stage's early-stopping progress

    @classmethod
    def read(cls, run: RunDirectory) -> "ResumePoint":
        path = run.path / FOLDER / STATE
        try:
            state = json.loads(path.read_text())
            return cls(int(state["stage"]), int(state["stage_first_epoch"]), int(state["epoch"]),
                       list(state["checkpoints"]), int(state.get("step", 0)),
                       state.get("early_stopping"))
        except FileNotFoundError:
            raise RunError(f"{run.path} has no checkpoint to resume from ({path} is missing); "
                           "it stopped before its first epoch ended. Train it again instead.") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"cannot read {path}: {error}") from None


def random_state(network):
    """A trackable holding the state of every layer's random-number generator (dropout,
    augmentation), which `tf.train.Checkpoint` does not find through Keras 3 layers."""
    import tensorflow as tf

    holder = tf.Module()
    states = []
    for layer in network._flatten_layers():
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                states.append(value.state.value)
    holder.states = states
    return holder


def variable_list(variables):
    """A trackable holding variables by position (same architecture, same order)."""
    import tensorflow as tf

    holder = tf.Module()
    holder.values = [getattr(v, "value", v) for v in variables]
    return holder


def make_checkpoint(network, trainer=None):
    """What a checkpoint holds. Keras 3 models are not tracked by `tf.train.Checkpoint`
    through their attributes, so every variable is listed explicitly: all of the network's
    (frozen and non-trainable ones included), the training wrapper's own (a weighting
    strategy's), the optimizer's, and the layers' random-number states."""
    import tensorflow as tf

    parts = {"network": variable_list(network.variables), "rng": random_state(network)}
    if trainer is not None:
        known = {id(getattr(v, "value", v)) for v in network.variables}
        own = [v for v in trainer.variables if id(getattr(v, "value", v)) not in known]
        parts.update(strategy=variable_list(own), optimizer=trainer.optimizer)
    return tf.train.Checkpoint(**parts)


class Checkpointer(keras.callbacks.Callback):
    """Saves a checkpoint after an epoch whose loss is finite once `every_seconds` have passed
    since the last one (0: every epoch), keeping the last two; `fit_stage` also saves when a
    stage ends. With `every_steps`, also every that many steps inside an epoch. Saving a
    ResNet50 takes a few tenths of a second, which on small epochs would cost more than the
    epoch itself.

    Args:
        run: the run directory.
        network, trainer: what is saved (see `make_checkpoint`).
        stage: the stage's index; stage_first_epoch: epochs done before it.
        steps_per_epoch: training steps in an epoch (checkpoint numbers count steps).
        every_seconds: the least time between two epoch-end checkpoints.
        every_steps: also save every this many steps inside an epoch (None: only after epochs).
        first_step: steps of the first epoch already trained (a run resumed mid-epoch).
        early: the stage's `ResumableEarlyStopping`, whose progress (and best weights, in
            best_weights.npz) each checkpoint records.
        enabled: False on a worker other than the chief, which saves nothing.
    """

    def __init__(self, run: RunDirectory, network, trainer, stage: int, stage_first_epoch: int,
                 steps_per_epoch: int = 1, every_seconds: float = 0.0,
                 every_steps: int | None = None, first_step: int = 0, early=None,
                 enabled: bool = True):
        super().__init__()
        import time

        import tensorflow as tf

        self.run = run
        # a worker other than the chief saves nothing: checkpoints hold mirrored variables only
        # (no metrics), so saving reads local copies and needs no other worker
        self.enabled = enabled
        self.stage = stage
        self.stage_first_epoch = stage_first_epoch
        self.steps_per_epoch = steps_per_epoch
        self.every_seconds = every_seconds
        self.every_steps = every_steps
        self.step_offset = first_step
        self.last_saved: tuple[int, int] | None = None  # (epochs, steps) of the last save
        self.early = early
        self.best_written: int | None = None  # the best epoch whose weights are on disk
        self.epoch = stage_first_epoch
        self.clock = time.monotonic
        self.saved_at = self.clock()
        self.checkpoint = make_checkpoint(network, trainer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(run.path / FOLDER),
                                                  max_to_keep=2)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.saved_step = self.step_offset

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # `batch` counts this fit's steps of the epoch (a multiple of steps_per_execution)
        step = self.step_offset + batch + 1
        if (self.every_steps and step - self.saved_step >= self.every_steps
                and step < self.steps_per_epoch):
            self.save(self.epoch, step=step)
            self.saved_step = step

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.step_offset = 0
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # keep the last good checkpoint
        if self.clock() - self.saved_at >= self.every_seconds:
            self.save(epoch + 1)

    def save(self, epoch: int, stage_done: bool = False, step: int = 0) -> None:
        """Saves the state after `epoch` epochs (counted over all stages) and `step` steps of
        the next. After a stage's last epoch, the state points at the start of the next stage."""
        if not self.enabled:
            return
        self.manager.save(checkpoint_number=epoch * self.steps_per_epoch + step)
        self.saved_at = self.clock()
        self.last_saved = (epoch, step)
        stage, first = (self.stage + 1, epoch) if stage_done else (self.stage, self.stage_first_epoch)
        state = {"stage": stage, "stage_first_epoch": first, "epoch": epoch, "step": step,
                 "checkpoints": [Path(p).name for p in self.manager.checkpoints]}
        best = self.run.path / FOLDER / BEST_WEIGHTS
        if self.early is not None and not stage_done:
            state["early_stopping"] = self.early.progress()
            if getattr(self.early, "best_weights", None) is None:
                best.unlink(missing_ok=True)
            elif self.best_written != self.early.best_epoch:
                write_best_weights(self.run, self.early.best_weights)
                self.best_written = self.early.best_epoch
        else:  # the next stage starts its own early stopping
            best.unlink(missing_ok=True)
        self.run.write_json(f"{FOLDER}/{STATE}", state)


BEST_WEIGHTS = "best_weights.npz"


def write_best_weights(run: RunDirectory, weights: list) -> None:
    """Early stopping's best weights so far (restored at a stage's end), written atomically."""
    import os

    import numpy as np

    path = run.path / FOLDER / BEST_WEIGHTS
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, *weights)
    os.replace(temporary, path)


def read_best_weights(run: RunDirectory) -> list | None:
    import numpy as np

    try:
        with np.load(run.path / FOLDER / BEST_WEIGHTS, allow_pickle=False) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError):
        return None


def restore(run: RunDirectory, point: ResumePoint, network, trainer) -> str:
    """Restores the newest readable checkpoint into the network, optimizer and strategy.

    Returns:
        The checkpoint's name.

    Raises:
        RunError: no checkpoint can be read; names the files tried.
    """
    import tensorflow as tf

    if point.epoch == point.stage_first_epoch and point.step == 0:
        # the start of a stage: its optimizer is new, only the network and RNG carry over
        checkpoint = make_checkpoint(network)
    else:
        checkpoint = make_checkpoint(network, trainer)
    tried = []
    for name in reversed(point.checkpoints):
        path = run.path / FOLDER / name
        try:
            checkpoint.restore(str(path)).expect_partial()
            return name
        except (tf.errors.OpError, ValueError, AssertionError) as error:
            tried.append(f"{path}: {str(error).splitlines()[0][:120]}")
    raise RunError("no readable checkpoint to resume from: " + "; ".join(tried or ["none listed"]))
