"""Hard parameter sharing: one stack of Dense layers shared by every task."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from mtl_runner.models.trunks.base import TRUNKS, Trunk


@TRUNKS.register("shared_bottom")
class SharedBottom(Trunk):
    """Shared-bottom multi-task network (Caruana, "Multitask Learning", Machine Learning 1997).

    Every task reads the same representation, produced by a stack of Dense layers; the task
    heads on top hold the task-specific parameters.

    Exposes: only shared layers (`shared_dense_i`, `shared_bn_i`, `shared_act_i`,
    `shared_dropout_i`); none belongs to one task, and the last shared layer (GradNorm's `W`)
    is the top `shared_dense_i` (or `shared_bn_i`).

    Example:
        ```yaml
        model:
          trunk: {type: shared_bottom, units: [64, 32], dropout: 0.1, batch_norm: false}
        ```
    """

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")

        type: Literal["shared_bottom"] = "shared_bottom"
        units: list[PositiveInt] = Field(default=[64, 32],
                                         description="Width of each shared Dense layer.")
        activation: str = "relu"
        dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
        batch_norm: bool = False

    def build(self, features, task_names: list[str]) -> dict:
        import keras

        x = features
        for i, units in enumerate(self.config.units):
            x = keras.layers.Dense(units, name=f"shared_dense_{i}")(x)
            if self.config.batch_norm:
                x = keras.layers.BatchNormalization(name=f"shared_bn_{i}")(x)
            x = keras.layers.Activation(self.config.activation, name=f"shared_act_{i}")(x)
            if self.config.dropout:
                x = keras.layers.Dropout(self.config.dropout, name=f"shared_dropout_{i}")(x)
        return {task: x for task in task_names}
