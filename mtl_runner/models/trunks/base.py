"""The trunk interface and registry."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from mtl_runner.registry import Registry

TRUNKS: Registry[type["Trunk"]] = Registry("trunk")


class Trunk:
    """A trunk maps the preprocessed input vector to one representation per task.

    Subclasses define a nested pydantic `Config` whose `type` field is the registered name,
    and `build`, which returns one Keras tensor per task (hard sharing returns the same tensor
    for every task).

    Every layer a trunk builds is shared, as far as training, the fine-tuning stages and
    `mtl doctor` are concerned (`mtl_runner.models.parts`): the task heads are the layers
    `models.build.build_head` puts on top. A trunk layer that serves one task (a gate, a
    column, a task's expert) carries the task's name between underscores, `_<task>_`, so
    that it is never taken for the last shared layer; its name must not be `<task>` or
    `<task>_dense_<i>` / `<task>_dropout_<i>`, which are the heads'. Each trunk's docstring
    says which of its layers serve one task.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any):
        self.config = config

    def build(self, features, task_names: list[str]) -> dict[str, Any]:
        raise NotImplementedError
