"""Cross-stitch networks: one column per task, columns mixed by learned cross-stitch units."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from mtl_runner.models.trunks.base import TRUNKS, Trunk


@TRUNKS.register("cross_stitch")
class CrossStitchTrunk(Trunk):
    """Cross-stitch networks (Misra et al., "Cross-stitch Networks for Multi-task Learning",
    CVPR 2016).

    Every task `k` has its own column of Dense layers (soft parameter sharing). After each
    layer `l`, a cross-stitch unit mixes the columns' activations with a learned `T×T`
    matrix `α^l` (eq. 1 of the paper, written for `T` tasks):

        x̃^l_k = Σ_{j=1..T} α^l_kj x^l_j

    and `x̃^l_k` is the input of column `k`'s next layer (and, after the last layer, of task
    `k`'s head). `α` starts near the identity (`α_kk = self_weight`, `α_kj = (1 − self_weight)
    / (T − 1)`), as the paper recommends (0.9 / 0.1 for two tasks), so that columns begin
    mostly independent and learn how much to share.

    Exposes: one column per task (`cross_stitch_<task>_dense_<i>`, and
    `cross_stitch_<task>_dropout_<i>`) and the cross-stitch units that mix them
    (`cross_stitch_unit_<i>`, shared). The columns are per-task but part of the trunk: they
    count as shared parameters (frozen in a `heads` stage), never as a task head, and,
    since their names carry the task, never as the last shared layer: that is the top
    cross-stitch unit.

    Example:
        ```yaml
        model:
          trunk: {type: cross_stitch, units: [64, 32], self_weight: 0.9}
        ```
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        type: Literal["cross_stitch"] = "cross_stitch"
        units: list[PositiveInt] = Field(default=[64, 32], min_length=1,
                                         description="Width of each Dense layer of a column.")
        activation: str = Field(default="relu", description="Activation of the column layers.")
        dropout: float = Field(default=0.0, ge=0.0, lt=1.0,
                               description="Dropout after each cross-stitch unit.")
        self_weight: float = Field(default=0.9, ge=0.0, le=1.0,
                                   description="Initial diagonal of each cross-stitch matrix.")

    def build(self, features, task_names: list[str]) -> dict:
        import keras

        from mtl_runner.models.mixing import CrossStitch

        c = self.config
        columns = [features for _ in task_names]
        for i, width in enumerate(c.units):
            columns = [keras.layers.Dense(width, activation=c.activation,
                                          name=f"cross_stitch_{task}_dense_{i}")(x)
                       for task, x in zip(task_names, columns)]
            columns = CrossStitch(self_weight=c.self_weight, name=f"cross_stitch_unit_{i}")(columns)
            if c.dropout:
                columns = [keras.layers.Dropout(c.dropout, name=f"cross_stitch_{task}_dropout_{i}")(x)
                           for task, x in zip(task_names, columns)]
        return dict(zip(task_names, columns))
