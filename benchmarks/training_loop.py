"""mtl's training loop (training/loop.py) against the two loops it replaced, under each strategy.

Trains the quickstart recipe (20 epochs, no early stopping) as whole `mtl train` processes, with
this tree and with `--baseline` (a git revision, checked out into a temporary worktree; default
a959475, the last with both Keras' `fit` and the former own loop, `runtime.loop: fit | custom`):

* one device: this loop vs the baseline's `fit` and own loop;
* MirroredStrategy over two logical CPU devices: the same three;
* MultiWorkerMirroredStrategy: two worker processes on loopback ports (TF_CONFIG), this loop vs
  the baseline's own loop (its `fit` fails there).

Reports the median epoch time of epochs 2–20 (the first one traces the step) from the runs'
epoch lines, medians over the repeats, configurations alternated so that a busy machine slows
them all. On one 2-core machine the two workers share the cores, so the multi-worker row
measures the loop's and the collectives' overhead, not a speed-up.

    python benchmarks/training_loop.py [--repeats 3] [--baseline a959475] [--out ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mtl_runner.cli import main
main()
"""
MAIN = "from mtl_runner.cli import main; main()"
ARGS = ["train", "recipes/quickstart.yaml", "--set", "training.epochs=20",
        "--set", "training.early_stopping=null", "--tracking", "none"]


def epoch_seconds(stdout: str) -> float:
    """The median time of epochs 2.. from the `epoch i/N ... (1.2s)` lines."""
    times = [float(t) for t in re.findall(r"^epoch +\d+/\d+ .*\((\d+\.\d+)s\)$", stdout, re.M)]
    if len(times) < 2:
        raise SystemExit(f"no epoch lines in:\n{stdout[-2000:]}")
    return statistics.median(times[1:])


def run(code: str, extra: list[str], results: str, tree: Path = ROOT) -> float:
    """One `mtl train` of `tree`'s package (run from that folder, so it imports its own)."""
    done = subprocess.run([sys.executable, "-c", code, *ARGS, "--results", results, *extra],
                          cwd=tree, env=ENV, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-3000:])
    return epoch_seconds(done.stdout)


def two_workers(results: str, tree: Path = ROOT, extra: tuple = ()) -> float:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                               "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen([sys.executable, "-c", MAIN, *ARGS, "--results", results,
                                         *extra], cwd=tree, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
    outputs = [w.communicate(timeout=900) for w in workers]
    if any(w.returncode for w in workers):
        raise SystemExit("\n".join(o + e[-3000:] for o, e in outputs))
    return epoch_seconds(outputs[0][0])


MIRRORED = ["--set", "runtime.strategy=mirrored"]


def configurations(old: Path, revision: str) -> dict:
    """Name → function of a results folder that returns the median epoch seconds."""
    fit, own = ["--set", "runtime.loop=fit"], ["--set", "runtime.loop=custom"]
    return {
        "one device, mtl's loop": lambda r: run(MAIN, [], r),
        f"one device, {revision} fit": lambda r: run(MAIN, fit, r, old),
        f"one device, {revision} own loop": lambda r: run(MAIN, own, r, old),
        "MirroredStrategy ×2 logical CPUs, mtl's loop": lambda r: run(TWO_CPUS, MIRRORED, r),
        f"MirroredStrategy ×2 logical CPUs, {revision} fit": lambda r: run(TWO_CPUS, MIRRORED + fit, r, old),
        f"MirroredStrategy ×2 logical CPUs, {revision} own loop": lambda r: run(
            TWO_CPUS, MIRRORED + own, r, old),
        "2 workers on loopback, mtl's loop": two_workers,
        f"2 workers on loopback, {revision} own loop": lambda r: two_workers(r, old, tuple(own)),
    }


def worktree(revision: str, folder: str) -> Path:
    path = Path(folder) / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], cwd=ROOT,
                   check=True, capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="a959475", help="git revision to compare with")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "training_loop.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = worktree(args.baseline, folder)
        try:
            times = measure(configurations(old, args.baseline), args.repeats, folder)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT)
    base = statistics.median(times["one device, mtl's loop"])
    lines = ["# Training loops: mtl's loop against Keras' fit and the former own loop", "",
             f"`python benchmarks/training_loop.py --repeats {args.repeats} --baseline "
             f"{args.baseline}`: quickstart recipe (240 training rows, batch 32, 8 steps an epoch "
             "plus validation), median epoch time of epochs 2–20 (epoch lines to the millisecond), "
             "median over the repeats; configurations alternated.", "",
             "| configuration | ms per epoch | × one device, mtl's loop | runs (ms) |",
             "|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median * 1000:.0f} | {median / base:.2f} | "
                     f"{', '.join(f'{v * 1000:.0f}' for v in values)} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def measure(configs: dict, repeats: int, folder: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in configs}
    results = str(Path(folder) / "results")
    for repeat in range(repeats):
        order = list(configs)
        for name in order if repeat % 2 == 0 else reversed(order):
            times[name].append(configs[name](results))
            print(f"{name}: {times[name][-1] * 1000:.0f} ms/epoch", flush=True)
    return times


if __name__ == "__main__":
    main()
