"""Which of a network's variables are shared by every task (the trunk) and which belong to one
task's head: the one rule training, `mtl doctor` and the fine-tuning stages use."""

from __future__ import annotations

import re

import keras


def head_owner(layer_name: str, task_names: list[str]) -> str | None:
    """The task whose head a layer belongs to (`<task>`, `<task>_dense_i`, `<task>_dropout_i`)."""
    for task in task_names:
        if layer_name == task or re.fullmatch(rf"{re.escape(task)}_(dense|dropout)_\d+", layer_name):
            return task
    return None


def mentions_task(layer_name: str, task_names: list[str]) -> bool:
    """Whether a trunk layer's name carries a task name (a task's gate or column)."""
    return any(f"_{task}_" in f"_{layer_name}_" for task in task_names)


def split_variables(network: keras.Model, task_names: list[str]):
    """The network's trainable variables as (shared, heads by task, last shared layer's).

    Shared variables are every trainable variable outside the task heads (trunk, task gates and
    columns inside the trunk included). The last shared layer is the last layer, in the
    network's topological order, with trainable weights that belongs to no task.
    """
    shared: list = []
    heads: dict[str, list] = {task: [] for task in task_names}
    last: list = []
    seen: set[int] = set()
    for layer in network.layers:
        owner = head_owner(layer.name, task_names)
        fresh = [v for v in layer.trainable_variables if id(v) not in seen]
        seen.update(id(v) for v in fresh)
        if owner is not None:
            heads[owner].extend(fresh)
            continue
        shared.extend(fresh)
        if fresh and not mentions_task(layer.name, task_names):
            last = fresh
    return shared, heads, last
