"""Reading TF_CONFIG: which worker this process is, and who writes the run directory."""

from __future__ import annotations

import json

import pytest

from mtl_runner.errors import RunError
from mtl_runner.training.cluster import ClusterRole


def role(cluster: dict, task_type: str, index: int) -> ClusterRole:
    return ClusterRole.from_env({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}})})


def test_without_tf_config_the_process_is_a_one_worker_chief():
    alone = ClusterRole.from_env({})
    assert (alone.multi_worker, alone.is_chief, alone.workers) == (False, True, 1)


def test_worker_zero_is_the_chief_unless_the_cluster_has_one():
    workers = {"worker": ["a:1", "b:1", "c:1"]}
    assert [role(workers, "worker", i).is_chief for i in range(3)] == [True, False, False]
    assert role(workers, "worker", 2).workers == 3
    with_chief = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    assert role(with_chief, "chief", 0).is_chief
    assert not role(with_chief, "worker", 0).is_chief
    assert role(with_chief, "worker", 1).workers == 3


def test_a_cluster_of_one_trains_like_no_cluster():
    assert not role({"worker": ["a:1"]}, "worker", 0).multi_worker


@pytest.mark.parametrize("text, message", [
    ("not json", "TF_CONFIG is not a usable cluster description"),
    ('{"cluster": {"worker": ["a:1"]}}', "KeyError('task')"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG's task worker 2 is not in its cluster (worker: 2)"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG lists ps tasks"),
])
def test_unusable_tf_config_explains_itself(text, message):
    with pytest.raises(RunError, match=None) as caught:
        ClusterRole.from_env({"TF_CONFIG": text})
    assert message in str(caught.value)
