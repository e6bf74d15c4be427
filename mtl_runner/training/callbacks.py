"""Callbacks that keep the run directory current while training."""

from __future__ import annotations

import math

import keras
import pandas as pd

from mtl_runner.results import RunDirectory


class HistoryWriter(keras.callbacks.Callback):
    """Writes `history.csv` after every epoch (a line appended; the file is rewritten atomically
    when its columns change), so a crash loses at most one epoch of history.

    Columns: epoch, stage, learning_rate, then every loss and metric Keras logged, train and
    validation (`val_` prefix), sorted.
    """

    def __init__(self, run: RunDirectory, stage: str = "train"):
        super().__init__()
        self.run = run
        self.stage = stage
        self.rows: list[dict] = []
        self.columns: list[str] = []

    def keep_until(self, epoch: int) -> None:
        """Resuming: keep the rows of epochs 1..epoch already in history.csv, drop later ones."""
        try:
            frame = pd.read_csv(self.run.file("history.csv"))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
            return
        self.rows = frame[frame["epoch"] <= epoch].to_dict("records")
        self.run.write_frame("history.csv", pd.DataFrame(self.rows))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, "stage": self.stage}
        rate = logs.pop("learning_rate", None)
        if rate is None:
            rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["learning_rate"] = float(rate)
        row.update({k: float(v) for k, v in sorted(logs.items())})
        self.rows.append(row)
        columns = list(row)
        if len(self.rows) > 1 and columns == self.columns:
            # the same columns as the file: append one line (rewriting grows with every epoch)
            with open(self.run.file("history.csv"), "a", encoding="utf-8") as handle:
                handle.write(pd.DataFrame([row]).to_csv(index=False, header=False))
        else:  # first row or new columns: rewrite the whole file atomically
            self.run.write_frame("history.csv", pd.DataFrame(self.rows))
        self.columns = columns


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` whose progress (best value and epoch, epochs without improvement,
    best weights) carries over to the next `fit` call and, through checkpoints, to a resumed run.

    Keras resets that progress in `on_train_begin` and restores the best weights in every
    `on_train_end`; here a `fit` call that does not end the stage (`final = False`: the rest of
    an epoch a resumed run finishes first) restores nothing unless it stopped.
    """

    def __init__(self, progress: dict | None = None, best_weights: list | None = None, **kwargs):
        super().__init__(**kwargs)
        self.carried, self.carried_weights = progress, best_weights
        self.final = True

    def progress(self) -> dict:
        best = getattr(self, "best", None)
        return {"wait": int(getattr(self, "wait", 0)), "best_epoch": int(getattr(self, "best_epoch", 0)),
                "best": None if best is None else float(best)}

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self.carried is not None:
            self.wait, self.best_epoch = self.carried["wait"], self.carried["best_epoch"]
            self.best = self.carried["best"]
            self.best_weights = self.carried_weights

    def on_train_end(self, logs: dict | None = None) -> None:
        self.carried, self.carried_weights = self.progress(), self.best_weights
        if self.final or self.stopped_epoch > 0:
            super().on_train_end(logs)


class StopOnNaN(keras.callbacks.Callback):
    """Stops training when the loss becomes NaN or Inf, and remembers that it did."""

    def __init__(self):
        super().__init__()
        self.bad_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_epoch = epoch + 1
            self.model.stop_training = True


class EpochLine(keras.callbacks.Callback):
    """One compact line per epoch (for logs and pipes, where a progress bar is noise).

    Shows the total and validation loss, and the monitored metric when it is another one.
    """

    def __init__(self, epochs: int, echo, monitor: str | None = None, stage: str | None = None):
        super().__init__()
        self.epochs = epochs
        self.echo = echo
        self.monitor = monitor
        self.stage = stage

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        import time

        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import time

        logs = logs or {}
        keys = ["loss", "val_loss"] + ([self.monitor] if self.monitor not in (None, "loss", "val_loss") else [])
        shown = "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys if k in logs)
        width = len(str(self.epochs))
        stage = f"[{self.stage}] " if self.stage else ""
        seconds = time.perf_counter() - self.started
        self.echo(f"{stage}epoch {epoch + 1:>{width}}/{self.epochs}  {shown}  "
                  f"({seconds:.{2 if seconds < 10 else 1}f}s)")


class NameSingleTask(keras.callbacks.Callback):
    """Gives a one-task model the same log names as a multi-task one.

    Keras drops the output name when a model has a single output (`accuracy`, not
    `species_accuracy`); history.csv, early stopping and `mtl compare` rely on
    `<task>_<metric>` names, so this callback (first in the list) renames the epoch logs in
    place, and adds `<task>_loss`.
    """

    def __init__(self, task: str):
        super().__init__()
        self.task = task

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for key in list(logs):
            prefix = "val_" if key.startswith("val_") else ""
            name = key[len(prefix):]
            if name == "learning_rate" or name.startswith(self.task + "_") or name.startswith("weight_"):
                continue
            if name == "loss":
                logs.setdefault(f"{prefix}{self.task}_loss", logs[key])
                continue
            logs[f"{prefix}{self.task}_{name}"] = logs.pop(key)
