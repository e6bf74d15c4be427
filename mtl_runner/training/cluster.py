"""Training on several machines: who this process is in the `TF_CONFIG` cluster.

TensorFlow's multi-worker convention (`tf.distribute.MultiWorkerMirroredStrategy`): every
process gets the same `cluster` and its own `task`, e.g.

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

The chief (the `chief` task, or worker 0 when the cluster has none) writes the run directory;
the other workers train the same steps in lockstep and keep their files in a temporary folder
that is deleted when they finish.
"""

from __future__ import annotations

import dataclasses
import json
import os

from mtl_runner.errors import RunError


@dataclasses.dataclass(frozen=True)
class ClusterRole:
    """This process's place in a multi-worker cluster (`workers` is 1 without TF_CONFIG)."""

    task_type: str = "worker"
    task_index: int = 0
    workers: int = 1
    has_chief: bool = False  # the cluster has a `chief` task (else worker 0 is the chief)

    @property
    def multi_worker(self) -> bool:
        return self.workers > 1

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.task_index == 0
                                             and not self.has_chief)

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index}"

    @classmethod
    def from_env(cls, environ=os.environ) -> "ClusterRole":
        """Reads TF_CONFIG; without it, a one-process "cluster" whose only worker is the chief.

        Raises:
            RunError: TF_CONFIG is not JSON, lacks `cluster` or `task`, or names a task the
                cluster does not have.
        """
        text = environ.get("TF_CONFIG", "").strip()
        if not text:
            return cls()
        hint = ('set it like {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}, or unset it to train on this machine only')
        try:
            config = json.loads(text)
            cluster, task = config["cluster"], config["task"]
            task_type, index = str(task["type"]), int(task.get("index", 0))
            jobs = {job: list(addresses) for job, addresses in cluster.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise RunError(f"TF_CONFIG is not a usable cluster description ({error!r}); {hint}") from None
        if task_type not in jobs or not 0 <= index < len(jobs[task_type]):
            raise RunError(f"TF_CONFIG's task {task_type} {index} is not in its cluster "
                           f"({', '.join(f'{j}: {len(a)}' for j, a in jobs.items())}); {hint}")
        unsupported = set(jobs) - {"chief", "worker"}
        if unsupported:
            raise RunError(f"TF_CONFIG lists {', '.join(sorted(unsupported))} tasks; mtl trains with "
                           "MultiWorkerMirroredStrategy, which takes only chief and worker tasks")
        workers = sum(len(jobs.get(job, [])) for job in ("chief", "worker"))
        return cls(task_type, index, workers, "chief" in jobs)
