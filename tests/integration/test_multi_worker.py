"""Multi-worker training: two `mtl train` processes on loopback ports with TF_CONFIG."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from tests.conftest import REPO

MAIN = "from mtl_runner.cli import main; main()"


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(logs: Path, *arguments: str) -> list[subprocess.Popen]:
    """Starts worker 0 (the chief) and worker 1 of a two-worker cluster on loopback ports, each
    running `mtl train ARGUMENTS`; their output goes to logs/worker<i>.log."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(logs), TF_CONFIG=json.dumps(  # a killed worker's
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))  # files stay here
        with open(logs / f"worker{index}.log", "a") as log:
            workers.append(subprocess.Popen([sys.executable, "-c", MAIN, "train", *arguments],
                                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
    return workers


def train_workers(recipe: Path, results: Path, logs: Path, *extra: str) -> list[subprocess.Popen]:
    return start_workers(logs, str(recipe), "--results", str(results), "--set",
                         "weighting.name=pcgrad", "--set", "training.early_stopping=null", *extra)


def output(logs: Path, index: int) -> str:
    return (logs / f"worker{index}.log").read_text()


def test_two_workers_train_in_lockstep_and_only_the_chief_writes(write_recipe, tmp_path):
    recipe = write_recipe()
    results = tmp_path / "results"
    workers = train_workers(recipe, results, tmp_path, "--set", "training.epochs=3")
    codes = [w.wait(timeout=300) for w in workers]
    assert codes == [0, 0], output(tmp_path, 0) + output(tmp_path, 1)

    [run] = list(results.iterdir())  # one run directory, the chief's
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    assert (info["strategy"], info["workers"], info["replicas"]) == (
        "MultiWorkerMirroredStrategy", 2, 2)
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert {"weight_kind", "val_target_mae"} <= set(history.columns)

    digests = [re.findall(r"final weights sha256 (\w+)", output(tmp_path, i)) for i in (0, 1)]
    assert digests[0] == digests[1] == [info["weights_sha256"]]  # identical final weights

    chief, worker = output(tmp_path, 0), output(tmp_path, 1)
    assert "MultiWorkerMirroredStrategy with 2 replica(s), batch 8 per replica" in chief
    assert "worker 1 of 2 workers" in worker
    [scratch] = re.findall(r"^Run \S+: (\S+)$", worker, re.MULTILINE)
    assert Path(scratch).parent.parent == tmp_path  # in the worker's temporary folder ...
    assert not Path(scratch).exists()  # ... which it deleted


def test_a_lost_worker_fails_the_run_and_all_workers_resume_it(write_recipe, tmp_path):
    recipe = write_recipe()
    results = tmp_path / "results"
    chief, worker = train_workers(recipe, results, tmp_path, "--set", "training.epochs=12",
                                  "--set", "runtime.peer_check_seconds=5",
                                  "--set", "runtime.checkpoint_seconds=0")
    deadline = time.monotonic() + 240
    while not re.search(r"epoch +2/12", output(tmp_path, 1)):
        assert time.monotonic() < deadline and worker.poll() is None, output(tmp_path, 1)
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    assert chief.wait(timeout=120) == 1  # TimeoutExpired here would mean the chief hangs
    assert time.monotonic() - killed < 120
    [run] = list(results.iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed"
    assert info["error"].startswith("a worker stopped answering")
    assert "a worker stopped answering" in output(tmp_path, 0)

    # every worker resumes from the chief's checkpoint (a shared file system here)
    resumed = start_workers(tmp_path, "--resume", run.name, "--results", str(results))
    assert [w.wait(timeout=300) for w in resumed] == [0, 0], output(tmp_path, 0) + output(tmp_path, 1)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumed"]) == 1
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(1, 13))
    digests = [re.findall(r"final weights sha256 (\w+)", output(tmp_path, i)) for i in (0, 1)]
    assert digests[0] == digests[1] == [info["weights_sha256"]]
