"""Ctrl-C and SIGTERM: stop at the next step boundary, after saving a checkpoint there.

While a training loop runs, the first SIGINT or SIGTERM only asks it to stop: `StopOnSignal`
(a callback placed after the checkpointer) saves a checkpoint after the step in progress and
then raises `KeyboardInterrupt`, so the run is marked `interrupted` and `mtl train --resume`
continues from exactly that step. A second signal, or one outside training (reading data, the
final evaluation), interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

import keras


class _State:
    training = False  # a training loop with a StopOnSignal callback is running
    requested = False  # a signal asked it to stop


def _handler(signum, frame):
    if _State.training and not _State.requested:
        _State.requested = True
        sys.stderr.write("\nstopping after this step, once a checkpoint is saved "
                         "(signal again to stop at once)\n")
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM (a scheduler's kill, `timeout`) end a run like Ctrl-C, gracefully
    while training. Does nothing outside the main thread, where signals cannot be handled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _State.requested = False
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _State.training = _State.requested = False


class StopOnSignal(keras.callbacks.Callback):
    """Saves a checkpoint and stops when a signal asked to; put it after the `Checkpointer`.

    Mid-epoch the checkpoint holds the steps done so far; at an epoch's last step it waits for
    the epoch's end (validation, history line) and saves after the epoch.
    """

    def __init__(self, checkpointer):
        super().__init__()
        self.checkpointer = checkpointer

    def on_train_begin(self, logs: dict | None = None) -> None:
        _State.training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        _State.training = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self.checkpointer.step_offset + batch + 1
        if _State.requested and step < self.checkpointer.steps_per_epoch:
            self.stop(self.epoch, step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if _State.requested:
            self.stop(epoch + 1, 0)

    def stop(self, epoch: int, step: int) -> None:
        _State.training = False
        if self.checkpointer.last_saved != (epoch, step):
            self.checkpointer.save(epoch, step=step)
        raise KeyboardInterrupt
