"""Multi-gate Mixture-of-Experts (MMoE): shared experts, one softmax gate per task."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from mtl_runner.models.trunks.base import TRUNKS, Trunk


@TRUNKS.register("mmoe")
class MMoE(Trunk):
    """Multi-gate Mixture-of-Experts (Ma et al., "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts", KDD 2018).

    `n` experts `f_1..f_n`, each a stack of Dense layers on the input `x`, are shared by all
    tasks; every task `k` has its own softmax gate over the experts, and its representation
    is the gated sum (eqs. 5–6 of the paper):

        f^k(x) = Σ_{i=1..n} g^k(x)_i f_i(x),    g^k(x) = softmax(W_gk x)

    with `W_gk ∈ R^{n×d}`. The task heads (towers `h^k`) sit on top: `y_k = h^k(f^k(x))`.
    Tasks that are less related learn to use different experts.

    Exposes: the experts (`mmoe_expert_<i>_dense_<j>`, shared by every task) and one gate per
    task (`mmoe_gate_<task>`, whose gated sum is `mmoe_mix_<task>`). The gates serve one task
    each but sit in the trunk: they count as shared parameters (they train in every stage
    that trains the trunk, and stay frozen in a `heads` stage), and, since their names carry
    the task, never as the last shared layer (that is the last expert's top Dense layer).

    `units` are the widths of each expert's Dense layers (the same key as `shared_bottom`,
    so `--set model.trunk.type=mmoe` on a shared-bottom recipe gives experts of that shape).

    Example:
        ```yaml
        model:
          trunk: {type: mmoe, num_experts: 8, units: [16], dropout: 0.0}
          heads: {units: [8]}
        ```
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        type: Literal["mmoe"] = "mmoe"
        num_experts: int = Field(default=4, ge=1, description="How many experts the tasks share.")
        units: list[PositiveInt] = Field(
            default=[64, 32], min_length=1, description="Width of each Dense layer of an expert.")
        activation: str = Field(default="relu", description="Activation of the expert layers.")
        dropout: float = Field(default=0.0, ge=0.0, lt=1.0,
                               description="Dropout after each expert layer.")

    def build(self, features, task_names: list[str]) -> dict:
        from mtl_runner.models.mixing import GatedSum, dense_stack, expert_gate

        config = self.config
        experts = [dense_stack(features, config.units, config.activation, config.dropout,
                               prefix=f"mmoe_expert_{i}")
                   for i in range(config.num_experts)]
        representations = {}
        for task in task_names:
            gate = expert_gate(features, config.num_experts, name=f"mmoe_gate_{task}")
            representations[task] = GatedSum(name=f"mmoe_mix_{task}")([gate, *experts])
        return representations
