"""Progressive Layered Extraction (PLE): stacked CGC levels with a shared gate between them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.models.trunks.base import TRUNKS, Trunk
from mtl_runner.models.trunks.cgc import ExpertsConfig, build_level


@TRUNKS.register("ple")
class PLE(Trunk):
    """Progressive Layered Extraction (Tang et al., "Progressive Layered Extraction (PLE): A
    Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020, §4.3).

    `num_levels` extraction levels, each a CGC (shared experts plus each task's own experts,
    one gate per task). Level `j` feeds level `j+1`: task `k`'s experts and gate read task
    `k`'s gated output of the level below, and the shared experts read the output of a
    shared gate that weighs every expert of the level below (eq. 5 of the paper):

        g^{k,j}(x) = w^{k,j}(g^{k,j−1}(x)) S^{k,j}(x),    g^{k,0}(x) = g^{s,0}(x) = x

    where `S^{k,j}` stacks task `k`'s and the shared experts of level `j`, and, for the
    shared gate of an intermediate level, all experts of that level. The last level has no
    shared gate: it is a CGC, and the task towers (heads) read `g^{k,N}(x)`.
    With `num_levels: 1`, PLE is CGC.

    Exposes: per level `j`, the layers of a CGC level prefixed `ple_<j>` (shared experts
    `ple_<j>_shared_expert_<i>_*`, each task's experts `ple_<j>_<task>_expert_<i>_*` and gate
    `ple_<j>_gate_<task>`), plus, below the last level, the shared gate `ple_<j>_gate_shared`.
    Task experts and gates are per-task but part of the trunk: they count as shared
    parameters (frozen in a `heads` stage) and never as the last shared layer, which is the
    last level's top shared-expert layer.

    Example:
        ```yaml
        model:
          trunk: {type: ple, num_levels: 2, num_shared_experts: 2, num_task_experts: 1, units: [32]}
        ```
    """

    class Config(ExpertsConfig):
        type: Literal["ple"] = "ple"
        num_levels: int = Field(default=2, ge=1, description="How many extraction levels.")

    def build(self, features, task_names: list[str]) -> dict:
        c = self.config
        task_inputs, shared_input = {task: features for task in task_names}, features
        for level in range(c.num_levels):
            last = level == c.num_levels - 1
            task_inputs, shared_input = build_level(
                task_inputs, shared_input, num_shared_experts=c.num_shared_experts,
                num_task_experts=c.num_task_experts, units=c.units, activation=c.activation,
                dropout=c.dropout, prefix=f"ple_{level}", shared_gate=not last)
        return task_inputs
