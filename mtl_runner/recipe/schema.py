"""The recipe schema, declared once: defaults and validation live here.

Every model forbids unknown keys. Trunks and weighting strategies contribute their own
`Config` classes through their registries, so adding one never touches this file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mtl_runner.models.trunks import TRUNKS
from mtl_runner.tasks import TASK_TYPES
from mtl_runner.weighting import WEIGHTINGS

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
TASK_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def tagged_union(registry, tag: str) -> Any:
    """The union of the registered classes' Configs, told apart by their `tag` field."""
    configs = tuple(cls.Config for _, cls in registry.items())
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[configs], Field(discriminator=tag)]  # type: ignore[valid-type]


TrunkConfig = tagged_union(TRUNKS, "type")
WeightingConfig = tagged_union(WEIGHTINGS, "name")
TaskTypeName = Literal[tuple(TASK_TYPES.names())]  # type: ignore[valid-type]


class SplitConfig(Strict):
    """How rows are divided into train, validation and test: deterministic from the seed."""

    validation: float = Field(0.15, ge=0.0, lt=1.0, description="Fraction of rows for validation.")
    test: float = Field(0.15, ge=0.0, lt=1.0, description="Fraction of rows for the final test.")
    seed: int | None = Field(None, description="Seed of the split; defaults to the recipe's seed.")
    stratify: bool = Field(True, description="Stratify on the first classification label.")

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> "SplitConfig":
        if self.validation + self.test >= 1.0:
            raise ValueError(f"validation + test must be below 1, leaving rows to train on. "
                             f"Received validation={self.validation}, test={self.test}")
        return self


class DataConfig(Strict):
    """Where the examples come from and which columns are features."""

    source: Literal["csv", "parquet", "npz", "builtin"]
    path: str | None = Field(None, description="File to read; relative to the recipe's folder.")
    name: str | None = Field(None, description="Dataset name, for source: builtin.")
    features: list[str] | None = Field(None, description="Feature columns; default: every column "
                                       "that is not a label and not excluded.")
    exclude: list[str] = Field(default_factory=list, description="Columns never used as features.")
    categorical: list[str] | None = Field(None, description="Columns to one-hot; default: every "
                                          "non-numeric feature column.")
    missing: Literal["impute", "error"] = Field(
        "impute", description="Missing feature values: impute (train mean or a 'missing' "
        "category, plus an indicator) or error.")
    split: SplitConfig = Field(default_factory=SplitConfig)

    @model_validator(mode="after")
    def _source_needs_its_key(self) -> "DataConfig":
        if self.source == "builtin" and not self.name:
            raise ValueError("source 'builtin' needs `name` (penguins or digits)")
        if self.source != "builtin" and not self.path:
            raise ValueError(f"source '{self.source}' needs `path`, the file to read")
        return self


class HeadConfig(Strict):
    """A task head: Dense layers between the trunk and the task's output layer."""

    units: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [16])
    activation: str = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class TaskConfig(Strict):
    """One task: its type, its label column(s) and how its loss counts."""

    type: TaskTypeName  # type: ignore[valid-type]
    label: str | Annotated[list[str], Field(min_length=1)]
    loss: str | None = Field(None, description="Loss override; default depends on the type.")
    metrics: list[str] | None = Field(None, description="Metrics; default depends on the type.")
    weight: float = Field(1.0, ge=0.0, description="Static loss weight w_i.")
    positive: str | int | bool | None = Field(None, description="Positive class (binary).")
    delimiter: str | None = Field(None, description="Separator of a one-column multilabel label.")
    head: HeadConfig | None = Field(None, description="This task's head; default: model.heads.")


class ModelConfig(Strict):
    trunk: TrunkConfig = Field(default_factory=lambda: TRUNKS.get("shared_bottom").Config())  # type: ignore[valid-type]
    heads: HeadConfig = Field(default_factory=HeadConfig)


class OptimizerConfig(Strict):
    name: Literal["adam", "adamw", "sgd", "rmsprop", "nadam"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0, le=10.0)
    weight_decay: float | None = Field(None, ge=0.0)
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="For sgd and rmsprop.")
    clipnorm: float | None = Field(None, gt=0.0)


class EarlyStoppingConfig(Strict):
    monitor: str = Field("val_loss", description="A history.csv column, e.g. val_loss or "
                         "val_species_accuracy.")
    patience: int = Field(10, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    restore_best_weights: bool = True


class TrainingConfig(Strict):
    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(32, ge=1, le=1_000_000)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)


class Recipe(Strict):
    """A multi-task experiment: data, tasks, model, loss weighting and training."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: str | None = None
    data: DataConfig
    tasks: dict[Annotated[str, Field(pattern=TASK_NAME_PATTERN, max_length=64)], TaskConfig] = Field(
        min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    weighting: WeightingConfig = Field(  # type: ignore[valid-type]
        default_factory=lambda: WEIGHTINGS.get("static").Config())
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    seed: int = Field(0, ge=0)

    def split_seed(self) -> int:
        return self.data.split.seed if self.data.split.seed is not None else self.seed
