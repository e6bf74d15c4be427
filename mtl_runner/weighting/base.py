"""The weighting-strategy interface and registry."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from mtl_runner.registry import Registry

WEIGHTINGS: Registry[type["Weighting"]] = Registry("weighting strategy")


class Weighting:
    """Decides the task weights w_i. Subclasses define a nested pydantic `Config` whose `name`
    field is the registered name."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, task_weights: dict[str, float]):
        self.config = config
        self.task_weights = task_weights

    def loss_weights(self) -> dict[str, float]:
        """Weights handed to `Model.compile(loss_weights=...)`."""
        raise NotImplementedError
