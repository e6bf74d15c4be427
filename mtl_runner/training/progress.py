"""What a terminal or a log shows while training: a progress bar, or one line per epoch."""

from __future__ import annotations

import time


class EpochLine:
    """One compact line per epoch (for logs and pipes, where a progress bar is noise).

    Shows the total and validation loss, and the monitored metric when it is another one.
    """

    def __init__(self, epochs: int, echo, monitor: str | None = None, stage: str | None = None):
        self.epochs = epochs
        self.echo = echo
        self.monitor = monitor
        self.stage = stage
        self.started = time.perf_counter()

    def begin(self) -> None:
        self.started = time.perf_counter()

    def end(self, epoch: int, logs: dict) -> None:
        """Epoch number `epoch` (1-based) ended with `logs`."""
        keys = ["loss", "val_loss"] + ([self.monitor] if self.monitor not in (None, "loss", "val_loss") else [])
        shown = "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys if k in logs)
        width = len(str(self.epochs))
        stage = f"[{self.stage}] " if self.stage else ""
        seconds = time.perf_counter() - self.started
        digits = 3 if seconds < 1 else 2 if seconds < 10 else 1
        self.echo(f"{stage}epoch {epoch:>{width}}/{self.epochs}  {shown}  ({seconds:.{digits}f}s)")
