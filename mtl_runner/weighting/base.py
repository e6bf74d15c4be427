"""The weighting-strategy interface and registry.

A strategy decides how the task losses L_i (already multiplied by each task's recipe `weight`)
become one update. There are two kinds:

* loss level (`level = "loss"`): the strategy returns task weights w_i and the trainer minimises
  Σ_i w_i L_i + `regularizer()` with one backward pass (static, uncertainty, dwa, rlw);
* gradient level (`level = "gradient"`): the trainer hands the strategy the per-task gradients
  on the shared variables, flattened into a (T, P) matrix G, and the strategy returns the one
  shared gradient to apply (pcgrad, mgda, cagrad, gradnorm). Each task head always receives its
  own task's gradient, times the weight the strategy reports for that task (`head_weights`).

Modules that define strategies must not import TensorFlow or Keras at import time (the CLI's
non-training commands stay TensorFlow-free); the tensor code imports inside the methods, which
only run while training.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mtl_runner.registry import Registry

WEIGHTINGS: Registry[type["Weighting"]] = Registry("weighting strategy")


class WeightingConfig(BaseModel):
    """Keys every strategy accepts: gradient-conflict telemetry."""

    model_config = ConfigDict(extra="forbid")

    telemetry: bool = Field(False, description=(
        "Log grad_cosine (mean pairwise cosine similarity of the task gradients on the shared "
        "variables) and grad_conflict (fraction of pairs with cosine < 0) for every epoch."))
    telemetry_every: int = Field(10, ge=1, description=(
        "Measure the telemetry every this many training steps (it costs one backward pass per "
        "task on the steps it is measured)."))


@dataclasses.dataclass
class StepContext:
    """What the trainer tells a strategy at each training step (`Weighting.bind`).

    Attributes:
        step: the optimizer's iteration counter (a scalar tensor).
        shared_variables: the shared (trunk) variables, in the order of the columns of the
            gradient matrix G that `combine` receives.
        last_shared_slice: [start, end) of the last shared layer's variables in a row of G
            (GradNorm's W), None when they are not contiguous or there is none.
    """

    step: Any
    shared_variables: list
    last_shared_slice: tuple[int, int] | None = None


class Weighting:
    """Base class of a weighting strategy.

    Subclasses define a nested pydantic `Config` (a `WeightingConfig` with a `name` literal that
    is the registered name) and implement `weights` (loss level) or `combine` (gradient level).

    Args:
        config: the validated `weighting` section of the recipe.
        task_weights: each task's `weight` from the recipe, by task name.
    """

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    level: ClassVar[Literal["loss", "gradient"]] = "loss"

    def __init__(self, config: Any, task_weights: dict[str, float]):
        self.config = config
        self.task_weights = task_weights
        self.task_names: list[str] = list(task_weights)
        self.task_types: dict[str, str] = {}
        self.context: StepContext | None = None

    # -- set-up ----------------------------------------------------------------------------------
    def build(self, model, task_types: dict[str, str]) -> None:
        """Creates the strategy's variables on `model` (a Keras model; `model.add_weight`).

        Called once, inside the distribution strategy's scope when there is one.

        Args:
            model: the multi-task training model that owns the variables.
            task_types: each task's type name ("classification", "regression", ...).
        """
        self.task_names = list(task_types)
        self.task_types = dict(task_types)

    def bind(self, context: StepContext) -> None:
        """Receives the step's context before `weights` or `combine` (kept as `self.context`)."""
        self.context = context

    def own_rule_variables(self) -> list:
        """Variables the strategy updates by its own rule, through `extra_gradients` with the
        model's optimizer (GradNorm's weights); the trainer leaves them out of the loss's
        gradient. None by default."""
        return []

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    # -- loss level --------------------------------------------------------------------------------
    def weights(self, losses, step):
        """Task weights w_i, a float32 tensor of shape (T,), for this step.

        Args:
            losses: the task losses, shape (T,).
            step: the optimizer's iteration counter (a scalar tensor).
        """
        raise NotImplementedError

    def regularizer(self):
        """A term added to the objective (uncertainty's Σ s_i / 2); 0 by default."""
        return 0.0

    # -- gradient level ----------------------------------------------------------------------------
    def combine(self, grads, losses, step):
        """The shared gradient from the per-task gradients.

        Args:
            grads: per-task gradients on the shared variables, shape (T, P).
            losses: the task losses, shape (T,).
            step: the optimizer's iteration counter.

        Returns:
            (shared_gradient of shape (P,), task weights of shape (T,)). The weights are logged
            as `weight_<task>` and scale each head's gradient.
        """
        raise NotImplementedError

    def extra_gradients(self) -> list:
        """(gradient, variable) pairs the strategy wants applied with the model's (GradNorm)."""
        return []

    def after_apply(self) -> None:
        """Runs after the optimizer's update, inside the training step (renormalisation)."""

    # -- epochs --------------------------------------------------------------------------------------
    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Called eagerly after every training epoch with Keras' logs (DWA's loss history)."""
