"""Customized Gate Control (CGC): shared and task-specific experts, one gate per task."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from mtl_runner.models.trunks.base import TRUNKS, Trunk


def build_level(task_inputs: dict[str, Any], shared_input, *, num_shared_experts: int,
                num_task_experts: int, units: list[int], activation: str, dropout: float,
                prefix: str, shared_gate: bool) -> tuple[dict[str, Any], Any]:
    """One extraction level: shared experts, each task's experts, and the gates.

    Task `k`'s experts read `task_inputs[k]`, the shared experts read `shared_input`; task
    `k`'s gate, also reading `task_inputs[k]`, weighs its own experts and the shared ones.
    A CGC trunk is one level on the raw input; PLE stacks levels, passing each gate's
    output on as the next level's input.

    Args:
        task_inputs: each task's input to this level.
        shared_input: the shared experts' input to this level.
        num_shared_experts: how many shared experts (`m_s`).
        num_task_experts: how many experts each task owns (`m_k`).
        units: the widths of each expert's Dense layers.
        activation: the activation of the expert layers.
        dropout: the dropout after each expert layer.
        prefix: the start of every layer name of this level.
        shared_gate: also build a gate over all experts that gives the shared input of the
            next level (PLE's intermediate levels).

    Returns:
        Each task's gated output, and the shared gate's output (None without `shared_gate`).
    """
    from mtl_runner.models.mixing import GatedSum, dense_stack, expert_gate

    shared = [dense_stack(shared_input, units, activation, dropout, f"{prefix}_shared_expert_{i}")
              for i in range(num_shared_experts)]
    outputs, every_expert = {}, list(shared)
    for task, x in task_inputs.items():
        own = [dense_stack(x, units, activation, dropout, f"{prefix}_{task}_expert_{i}")
               for i in range(num_task_experts)]
        every_expert += own
        gate = expert_gate(x, num_task_experts + num_shared_experts, f"{prefix}_gate_{task}")
        outputs[task] = GatedSum(name=f"{prefix}_mix_{task}")([gate, *own, *shared])
    shared_output = None
    if shared_gate:
        gate = expert_gate(shared_input, len(every_expert), f"{prefix}_gate_shared")
        shared_output = GatedSum(name=f"{prefix}_mix_shared")([gate, *every_expert])
    return outputs, shared_output


class ExpertsConfig(BaseModel):
    """The keys CGC and PLE share: expert counts and the shape of an expert."""

    model_config = ConfigDict(extra="forbid")

    num_shared_experts: int = Field(default=2, ge=1, description="Experts shared by all tasks.")
    num_task_experts: int = Field(default=2, ge=1, description="Experts owned by each task.")
    units: list[PositiveInt] = Field(default=[64, 32], min_length=1,
                                     description="Width of each Dense layer of an expert.")
    activation: str = Field(default="relu", description="Activation of the expert layers.")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0,
                           description="Dropout after each expert layer.")


@TRUNKS.register("cgc")
class CGC(Trunk):
    """Customized Gate Control (Tang et al., "Progressive Layered Extraction (PLE): A Novel
    Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020, §4.2).

    Unlike MMoE, experts are split into `m_s` shared experts `E_s` and `m_k` experts `E_k`
    owned by each task `k`. Task `k`'s gate weighs only its own and the shared experts
    (eqs. 2–4 of the paper):

        g^k(x) = w^k(x) S^k(x),    w^k(x) = softmax(W_g^k x),
        S^k(x) = [E_(k,1), ..., E_(k,m_k), E_(s,1), ..., E_(s,m_s)]

    and the task tower (head) reads it: `y^k = t^k(g^k(x))` (eq. 1). Task-specific experts
    take no gradient from other tasks, which limits negative transfer (the "seesaw").

    Exposes: shared experts (`cgc_shared_expert_<i>_dense_<j>`), each task's own experts
    (`cgc_<task>_expert_<i>_dense_<j>`) and gate (`cgc_gate_<task>`, mixed by
    `cgc_mix_<task>`). A task's experts and gate are per-task but part of the trunk: they
    count as shared parameters (frozen in a `heads` stage), never as a task head, and,
    since their names carry the task, never as the last shared layer.

    Example:
        ```yaml
        model:
          trunk: {type: cgc, num_shared_experts: 2, num_task_experts: 1, units: [32]}
        ```
    """

    class Config(ExpertsConfig):
        type: Literal["cgc"] = "cgc"

    def build(self, features, task_names: list[str]) -> dict:
        c = self.config
        outputs, _ = build_level({task: features for task in task_names}, features,
                                 num_shared_experts=c.num_shared_experts,
                                 num_task_experts=c.num_task_experts, units=c.units,
                                 activation=c.activation, dropout=c.dropout, prefix="cgc",
                                 shared_gate=False)
        return outputs
