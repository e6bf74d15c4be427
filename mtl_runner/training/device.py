"""Importing TensorFlow quietly, and choosing the device set-up a run uses."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from typing import Any

from mtl_runner.errors import RunError


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


@dataclasses.dataclass
class Runtime:
    """The device set-up of a run, recorded in run.json."""

    strategy: Any
    device: str
    gpus: list[str]
    replicas: int
    precision: str
    jit_compile: Any
    steps_per_execution: int
    deterministic: bool
    workers: int = 1
    chief: bool = True  # writes checkpoints and the run directory (False: another worker)

    @property
    def strategy_name(self) -> str:
        # MultiWorkerMirroredStrategy is an alias of CollectiveAllReduceStrategy
        return "MultiWorkerMirroredStrategy" if self.workers > 1 else type(self.strategy).__name__

    def record(self) -> dict:
        return {"device": self.device, "gpus": self.gpus, "strategy": self.strategy_name,
                "replicas": self.replicas, "workers": self.workers,
                "precision": self.precision, "jit_compile": self.jit_compile,
                "steps_per_execution": self.steps_per_execution,
                "deterministic": self.deterministic}


def compute_capability(tf, gpu) -> float:
    details = tf.config.experimental.get_device_details(gpu)
    major, minor = details.get("compute_capability", (0, 0))
    return major + minor / 10


# A process joins its cluster once: a second MultiWorkerMirroredStrategy cannot be created.
_MULTI_WORKER: dict = {}


def multi_worker_strategy(tf, runtime):
    """The process's `MultiWorkerMirroredStrategy` (TF_CONFIG names the cluster), created on
    first use. A worker that stops answering is noticed within about `peer_check_seconds`:
    TensorFlow's health check then aborts the collectives and training fails with an error
    instead of waiting for ever."""
    if "strategy" not in _MULTI_WORKER:
        # the health-check thread starts inside the constructor and reads these class settings
        from tensorflow.python.distribute import collective_all_reduce_strategy as collective

        extended = collective.CollectiveAllReduceExtended
        extended._check_health_interval = runtime.peer_check_seconds
        extended._check_health_timeout = min(10, runtime.peer_check_seconds)
        _MULTI_WORKER["strategy"] = tf.distribute.MultiWorkerMirroredStrategy()
    return _MULTI_WORKER["strategy"]


def setup_runtime(runtime, batch_size: int) -> Runtime:
    """Chooses devices, the distribution strategy and precision for `runtime` (a RuntimeConfig).

    auto: several visible GPUs → MirroredStrategy; one → that GPU; none → the CPU; TF_CONFIG
    naming several workers → MultiWorkerMirroredStrategy over every worker's devices. The recipe's
    batch size is the global batch; each replica gets batch_size / replicas.

    Raises:
        RunError: a GPU was asked for and none is visible, an index is out of range, TF_CONFIG
            is malformed, or the batch does not split evenly over the replicas.
    """
    import keras

    from mtl_runner.training.cluster import ClusterRole

    tf = import_tensorflow()
    role = ClusterRole.from_env()
    gpus = chosen_gpus(tf, runtime)
    with contextlib.suppress(RuntimeError):  # devices already initialised in this process
        tf.config.set_visible_devices(gpus, "GPU")
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = choose_strategy(tf, runtime, role, gpus)
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise RunError(f"training.batch_size {batch_size} is the global batch and must divide "
                       f"evenly over {replicas} replicas")
    precision = runtime.precision
    if precision == "auto":
        precision = "mixed_float16" if gpus and all(
            compute_capability(tf, g) >= 7.0 for g in gpus) else "float32"
    keras.mixed_precision.set_global_policy(precision)
    names = [g.name.replace("/physical_device:", "/") for g in gpus]
    return Runtime(strategy, "gpu" if gpus else "cpu", names, replicas, precision,
                   runtime.jit_compile, runtime.steps_per_execution, runtime.deterministic,
                   role.workers, role.is_chief)


def chosen_gpus(tf, runtime) -> list:
    """The GPUs the run uses (`runtime.gpus`, `runtime.device`)."""
    gpus = tf.config.list_physical_devices("GPU")
    if runtime.gpus is not None:
        missing = [i for i in runtime.gpus if i >= len(gpus)]
        if missing:
            raise RunError(f"runtime.gpus asks for GPU {missing[0]}, but {len(gpus)} GPU(s) are visible")
        gpus = [gpus[i] for i in runtime.gpus]
    if runtime.device == "gpu" and not gpus:
        raise RunError("runtime.device is gpu, but no GPU is visible. Install the GPU extra "
                       "(pip install 'mtl-runner[gpu]') or use --device cpu.")
    return [] if runtime.device == "cpu" else gpus


def choose_strategy(tf, runtime, role, gpus: list):
    if role.multi_worker:
        if runtime.strategy == "mirrored":
            raise RunError("runtime.strategy is mirrored, but TF_CONFIG names several workers: "
                           "use strategy auto (MultiWorkerMirroredStrategy) or unset TF_CONFIG")
        return multi_worker_strategy(tf, runtime)
    if runtime.strategy == "mirrored" or (runtime.strategy == "auto" and len(gpus) > 1):
        devices = ([f"/gpu:{i}" for i in range(len(gpus))] if gpus
                   else [d.name for d in tf.config.list_logical_devices("CPU")])
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def reset_runtime() -> None:
    """Undoes process-wide settings of a run (the precision policy), for the next one."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
