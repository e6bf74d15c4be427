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
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any):
        self.config = config

    def build(self, features, task_names: list[str]) -> dict[str, Any]:
        raise NotImplementedError
