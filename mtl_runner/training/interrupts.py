"""Ctrl-C and SIGTERM: stop at the next step boundary, after saving a checkpoint there.

While the training loop runs, the first SIGINT or SIGTERM only asks it to stop: the loop
(`training/loop.py`) saves a checkpoint after the step in progress and then raises
`KeyboardInterrupt`, so the run is marked `interrupted` and `mtl train --resume`
continues from exactly that step. A second signal, or one outside training (reading data, the
final evaluation), interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


class _State:
    training = False  # the training loop is running
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


def training(active: bool) -> None:
    """The loop tells whether it is training (a signal then asks it to stop gracefully)."""
    _State.training = active


def stop_requested() -> bool:
    """A signal asked the training loop to stop after the step in progress."""
    return _State.requested
