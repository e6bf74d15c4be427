"""history.csv, kept current while training: one line per epoch, so a crash loses at most one."""

from __future__ import annotations

import pandas as pd

from mtl_runner.results import RunDirectory


class HistoryWriter:
    """Writes `history.csv` after every epoch (a line appended; the file is rewritten atomically
    when its columns change).

    Columns: epoch, stage, learning_rate, then every loss and metric of the epoch, train and
    validation (`val_` prefix), sorted.
    """

    def __init__(self, run: RunDirectory, stage: str = "train"):
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

    def write(self, epoch: int, logs: dict, learning_rate: float) -> None:
        """Records epoch number `epoch` (1-based, over all stages)."""
        logs = dict(logs)
        rate = logs.pop("learning_rate", learning_rate)
        row = {"epoch": epoch, "stage": self.stage, "learning_rate": float(rate)}
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


def single_task_logs(logs: dict, task: str) -> dict:
    """A one-task model's logs under the names a multi-task one has.

    Keras drops the output name when a model has a single output (`accuracy`, not
    `species_accuracy`); history.csv, early stopping and `mtl compare` rely on `<task>_<metric>`
    names, so they are renamed, and `<task>_loss` is added.
    """
    named = {}
    for key, value in logs.items():
        prefix = "val_" if key.startswith("val_") else ""
        name = key[len(prefix):]
        if name == "loss":
            named[key] = value
            named.setdefault(f"{prefix}{task}_loss", value)
        elif name == "learning_rate" or name.startswith((task + "_", "weight_")):
            named[key] = value
        else:
            named[f"{prefix}{task}_{name}"] = value
    return named
