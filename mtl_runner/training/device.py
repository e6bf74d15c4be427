"""Importing TensorFlow quietly and describing the device set-up a run uses."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_captured():
    """Sends the process's file descriptor 2 to a temporary file for the duration.

    TensorFlow's C++ start-up logs (oneDNN notes, "could not find cuda drivers") ignore
    TF_CPP_MIN_LOG_LEVEL in recent releases; they are shown only if the block fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """Imports TensorFlow without its start-up noise and returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_captured():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


def device_info() -> dict:
    """The device, strategy, replica count and precision of a run, for run.json."""
    tf = import_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    return {"device": "gpu" if gpus else "cpu", "gpus": [g.name for g in gpus],
            "strategy": "default", "replicas": 1, "precision": "float32"}
