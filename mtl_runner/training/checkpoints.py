"""Checkpoints after every epoch, and resuming a run from its last good one.

Each checkpoint holds the network's weights, the optimizer's state, the weighting strategy's
variables and every layer's random-number state (`tf.train.Checkpoint`); the last two are
kept, so a corrupt latest one falls back to the previous. `checkpoints/state.json` says which stage and epoch the latest
checkpoint closes.
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

    @classmethod
    def read(cls, run: RunDirectory) -> "ResumePoint":
        path = run.path / FOLDER / STATE
        try:
            state = json.loads(path.read_text())
            return cls(int(state["stage"]), int(state["stage_first_epoch"]), int(state["epoch"]),
                       list(state["checkpoints"]))
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


def make_checkpoint(network, trainer):
    import tensorflow as tf

    return tf.train.Checkpoint(network=network, trainer=trainer, optimizer=trainer.optimizer,
                               rng=random_state(network))


class Checkpointer(keras.callbacks.Callback):
    """Saves a checkpoint after every epoch whose loss is finite, keeping the last two."""

    def __init__(self, run: RunDirectory, network, trainer, stage: int, stage_first_epoch: int):
        super().__init__()
        import tensorflow as tf

        self.run = run
        self.stage = stage
        self.stage_first_epoch = stage_first_epoch
        self.checkpoint = make_checkpoint(network, trainer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(run.path / FOLDER),
                                                  max_to_keep=2)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return  # keep the last good checkpoint
        self.manager.save(checkpoint_number=epoch + 1)
        state = {"stage": self.stage, "stage_first_epoch": self.stage_first_epoch,
                 "epoch": epoch + 1, "checkpoints": [Path(p).name for p in self.manager.checkpoints]}
        self.run.write_json(f"{FOLDER}/{STATE}", state)


def restore(run: RunDirectory, point: ResumePoint, network, trainer, target) -> str:
    """Restores the newest readable checkpoint into the network, optimizer and strategy.

    Returns:
        The checkpoint's name.

    Raises:
        RunError: no checkpoint can be read; names the files tried.
    """
    import tensorflow as tf

    trainer.optimizer.build(target.trainable_variables)
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
