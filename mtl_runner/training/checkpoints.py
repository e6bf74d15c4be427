"""Checkpoints after epochs (and every N steps), and resuming a run from its last good one.

Each checkpoint holds the network's weights, the optimizer's state, the weighting strategy's
variables and every layer's random-number state (`tf.train.Checkpoint`); the last two are
kept, so a corrupt latest one falls back to the previous. `checkpoints/state.json` records,
for every kept checkpoint, the `Position` it was saved at (stage, epochs completed, steps into
the next epoch, early-stopping progress, the stages already finished), so a fallback resumes
from exactly where that older checkpoint stands. Checkpoints are numbered by training steps
done (`ckpt-<steps>`). Early stopping's best weights live beside them as
`best_weights-<epoch>.npz`, one file per best epoch still referenced by a kept checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import keras

from mtl_runner.errors import RunError, UsageError
from mtl_runner.results import RunDirectory
from mtl_runner.training.state import TrainingState

FOLDER = "checkpoints"
STATE = "state.json"


# where a checkpoint stands: the training state it was saved with
Position = TrainingState


@dataclasses.dataclass
class ResumePoint:
    """Every kept checkpoint's position, newest last; `latest` is what a resume tries first."""

    positions: list[Position]

    @property
    def latest(self) -> Position:
        return self.positions[-1]

    @property
    def epoch(self) -> int:
        return self.latest.epoch

    @property
    def step(self) -> int:
        return self.latest.step

    @classmethod
    def read(cls, run: RunDirectory) -> "ResumePoint | None":
        """The run's checkpoints, or None when it saved none (it can only start again).

        Raises:
            UsageError: state.json is unreadable, or it is missing while history.csv shows
                epochs that the run must have checkpointed.
        """
        path = run.path / FOLDER / STATE
        try:
            state = json.loads(path.read_text())
            if "positions" not in state:  # written before positions were kept per checkpoint
                early = state.get("early_stopping")
                if early is not None and (path.parent / "best_weights.npz").exists():
                    early = dict(early, best_weights="best_weights.npz")  # the one file it kept
                state["positions"] = [dict(state, checkpoint=state["checkpoints"][-1],
                                           early_stopping=early,
                                           stages=run.read_json().get("stages", [])[: state["stage"]])]
            positions = [Position.from_dict(p) for p in state["positions"]]
            if not positions:
                raise ValueError("it lists no checkpoint")
            return cls(positions)
        except FileNotFoundError:
            epochs = history_epochs(run)
            if epochs:
                what = (f"{path.parent} is missing" if not path.parent.exists()
                        else f"{path} is missing")
                raise UsageError(
                    f"run {run.run_id} cannot be resumed: {what}, although history.csv records "
                    f"{epochs} epoch{'s' if epochs != 1 else ''} (the checkpoints were deleted, or "
                    "the run stopped before its first checkpoint, which is saved every "
                    f"runtime.checkpoint_seconds). Train it again: mtl train {run.path / 'recipe.yaml'}"
                ) from None
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            reason = (f"it lacks the key {error}" if isinstance(error, KeyError)
                      else str(error).splitlines()[0][:120])
            raise UsageError(f"run {run.run_id} cannot be resumed: {path} is unreadable "
                             f"({reason}). Train it again: "
                             f"mtl train {run.path / 'recipe.yaml'}") from None


def check_history(run: RunDirectory, point: ResumePoint) -> None:
    """A resume appends to history.csv: refuses one whose rows do not cover every epoch up to
    the oldest kept checkpoint (deleted or truncated), which would leave a gap.

    Raises:
        UsageError: names the epochs missing.
    """
    import pandas as pd

    needed = min(p.epoch for p in point.positions)
    try:
        epochs = set(pd.read_csv(run.file("history.csv"))["epoch"].astype(int))
    except (OSError, ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        epochs = set()
    missing = [e for e in range(1, needed + 1) if e not in epochs]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"run {run.run_id} cannot be resumed: its checkpoint stands after epoch "
                         f"{needed}, but history.csv lacks epoch(s) {shown} (missing, truncated "
                         "or edited); the resumed history would have a gap. Put history.csv back, "
                         f"or train it again: mtl train {run.path / 'recipe.yaml'}")


def history_epochs(run: RunDirectory) -> int:
    """How many epoch rows the run's history.csv holds (0 when it has none or is unreadable)."""
    import pandas as pd

    try:
        return int(len(pd.read_csv(run.file("history.csv"))))
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return 0


def readable_position(run: RunDirectory, point: ResumePoint, echo) -> Position:
    """The newest checkpoint whose files read completely; each one skipped is named in a
    warning line, and the position resumed from is that checkpoint's own.

    Raises:
        RunError: no checkpoint can be read; names every file tried and why.
    """
    import tensorflow as tf

    tried = []
    for position in reversed(point.positions):
        path = run.path / FOLDER / position.checkpoint
        try:
            reader = tf.train.load_checkpoint(str(path))
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)  # a truncated data file fails here, not at restore
        except Exception as error:  # noqa: BLE001 - any unreadable file: name it and fall back
            reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
            files = sorted(str(f) for f in path.parent.glob(f"{path.name}.*"))
            if not files:
                files, reason = [str(path)], "its files are missing"
            tried.append(f"{', '.join(files)}: {reason}")
            continue
        if tried:
            echo(f"warning: {len(tried)} newer checkpoint(s) could not be read ({'; '.join(tried)}); "
                 f"resuming from {position.checkpoint} instead, {position.describe()}")
        return position
    raise RunError("no readable checkpoint to resume from: " + "; ".join(tried or ["none listed"])
                   + ". Train the recipe again.")


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


class Checkpointer:
    """Saves checkpoints of a stage, each with the `TrainingState` it stands at, keeping the
    last two: after an epoch whose loss is finite once `every_seconds` have passed since the
    last one (0: every epoch), after the epoch early stopping ends a stage at, every
    `every_steps` steps inside an epoch, and when a stage ends. Saving a ResNet50 takes a few
    tenths of a second, which on small epochs would cost more than the epoch itself.

    Args:
        run: the run directory.
        network, trainer: what is saved (see `make_checkpoint`).
        steps_per_epoch: training steps in an epoch (checkpoint numbers count steps).
        every_seconds: the least time between two epoch-end checkpoints.
        every_steps: also save every this many steps inside an epoch (None: only after epochs).
        early: the stage's `EarlyStopping`, whose progress (and best weights, in
            best_weights-<epoch>.npz) each checkpoint records.
        enabled: False on a worker other than the chief, which saves nothing.
    """

    def __init__(self, run: RunDirectory, network, trainer, steps_per_epoch: int = 1,
                 every_seconds: float = 0.0, every_steps: int | None = None, early=None,
                 enabled: bool = True):
        import time

        import tensorflow as tf

        self.run = run
        # a worker other than the chief saves nothing: checkpoints hold mirrored variables only
        # (no metrics), so saving reads local copies and needs no other worker
        self.enabled = enabled
        self.steps_per_epoch = steps_per_epoch
        self.every_seconds = every_seconds
        self.every_steps = every_steps
        self.early = early
        self.last_saved: tuple[int, int] | None = None  # (epochs, steps) of the last save
        self.epoch_saved_step = 0
        self.clock = time.monotonic
        self.saved_at = self.clock()
        self.checkpoint = make_checkpoint(network, trainer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(run.path / FOLDER),
                                                  max_to_keep=2)

    def begin_epoch(self, state: TrainingState) -> None:
        self.epoch_saved_step = state.step

    def after_step(self, state: TrainingState) -> None:
        """Inside an epoch: saves every `every_steps` steps."""
        if self.every_steps and state.step - self.epoch_saved_step >= self.every_steps:
            self.save(state)
            self.epoch_saved_step = state.step

    def after_epoch(self, state: TrainingState, loss: float | None) -> None:
        """After an epoch: saves when the time has come or early stopping ended the stage,
        never after a NaN loss (the last good checkpoint stays the newest)."""
        if loss is not None and not math.isfinite(float(loss)):
            return
        if state.stopped or self.clock() - self.saved_at >= self.every_seconds:
            self.save(state)

    def save_unless_saved(self, state: TrainingState) -> None:
        if self.last_saved != (state.epoch, state.step):
            self.save(state)

    def save(self, state: TrainingState) -> None:
        """Saves a checkpoint at `state` (after a stage's end, the state of the next stage) and
        records the state in state.json, under the checkpoint's name."""
        if not self.enabled:
            return
        path = self.manager.save(checkpoint_number=state.epoch * self.steps_per_epoch + state.step)
        if state.stage_start:
            state.early_stopping = None
        elif self.early is not None:
            state.early_stopping = self.early_progress()
        self.saved_at = self.clock()
        self.last_saved = (state.epoch, state.step)
        state.checkpoint = Path(path).name
        kept = [Path(p).name for p in self.manager.checkpoints]
        positions = [p for p in previous_positions(self.run) if p.checkpoint in kept
                     and p.checkpoint != state.checkpoint] + [TrainingState.from_dict(state.to_dict())]
        record = {k: v for k, v in state.to_dict().items() if k != "checkpoint"}
        record.update(checkpoints=[p.checkpoint for p in positions],
                      positions=[p.to_dict() for p in positions])
        self.run.write_json(f"{FOLDER}/{STATE}", record)
        remove_unreferenced_best_weights(self.run, positions)

    def early_progress(self) -> dict:
        """Early stopping's progress, its best weights written once per best epoch."""
        progress = dict(self.early.progress(), best_weights=None)
        if self.early.best_weights is not None:
            progress["best_weights"] = f"best_weights-{progress['best_epoch']}.npz"
            if not (self.run.path / FOLDER / progress["best_weights"]).exists():
                write_best_weights(self.run, progress["best_weights"], self.early.best_weights)
        return progress


def previous_positions(run: RunDirectory) -> list[Position]:
    try:
        state = json.loads((run.path / FOLDER / STATE).read_text())
        return [Position.from_dict(p) for p in state.get("positions", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def remove_unreferenced_best_weights(run: RunDirectory, positions: list[Position]) -> None:
    used = {(p.early_stopping or {}).get("best_weights") for p in positions}
    for path in (run.path / FOLDER).glob("best_weights-*.npz"):
        if path.name not in used:
            path.unlink(missing_ok=True)


def write_best_weights(run: RunDirectory, name: str, weights: list) -> None:
    """Early stopping's best weights so far (restored at a stage's end), written atomically."""
    import os

    import numpy as np

    path = run.path / FOLDER / name
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, *weights)
    os.replace(temporary, path)


def read_best_weights(run: RunDirectory, position: Position) -> list | None:
    """The best weights a position's early-stopping progress refers to (None: none yet).

    Raises:
        RunError: the position refers to a file that is missing or unreadable.
    """
    import numpy as np

    name = (position.early_stopping or {}).get("best_weights")
    if not name:
        return None
    path = run.path / FOLDER / name
    try:
        with np.load(path, allow_pickle=False) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError) as error:
        raise RunError(f"cannot resume: early stopping's best weights {path} are unreadable "
                       f"({str(error).splitlines()[0][:120]}). Train the recipe again.") from None


def restore(run: RunDirectory, position: Position, network, trainer=None) -> None:
    """Restores `position`'s checkpoint into the network (and, with `trainer`, the optimizer
    and the weighting strategy's variables).

    Raises:
        RunError: the checkpoint does not fit this model; names the file.
    """
    checkpoint = make_checkpoint(network, None if position.stage_start else trainer)
    path = run.path / FOLDER / position.checkpoint
    try:
        checkpoint.restore(str(path)).expect_partial()
    except Exception as error:  # noqa: BLE001 - name the file whatever went wrong
        raise RunError(f"cannot restore checkpoint {path} into this model "
                       f"({str(error).splitlines()[0][:160]}); was the data or recipe changed "
                       "since the run started? Train the recipe again.") from None
