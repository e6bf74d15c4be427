"""The recipe schema, declared once: defaults and validation live here.

Every model forbids unknown keys. Trunks and weighting strategies contribute their own
`Config` classes through their registries, so adding one never touches this file.
"""

from __future__ import annotations

import math

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mtl_runner.models.backbones import BACKBONES
from mtl_runner.models.trunks import TRUNKS
from mtl_runner.tasks import TASK_TYPES
from mtl_runner.weighting import WEIGHTINGS

NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
TASK_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
MAX_SEED = 2**32 - 1  # numpy's global seed, which training sets, takes 32 bits


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
PRIMARY_METRICS = ", ".join(f"{kind.primary_metric} ({name})" for name, kind in TASK_TYPES.items())
BackboneName = Literal[tuple(BACKBONES.names())]  # type: ignore[valid-type]


class SplitConfig(Strict):
    """How rows are divided into train, validation and test: deterministic from the seed."""

    validation: float = Field(0.15, ge=0.0, lt=1.0, description="Fraction of rows for validation.")
    test: float = Field(0.15, ge=0.0, lt=1.0, description="Fraction of rows for the final test.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED,
                             description="Seed of the split; defaults to the recipe's seed.")
    stratify: bool | str = Field(True, description="true: stratify on the first classification "
                                 "or binary label; a column name: on that column; false: not at all.")

    @model_validator(mode="after")
    def _fractions_leave_training_rows(self) -> "SplitConfig":
        if self.validation + self.test >= 1.0:
            raise ValueError(f"validation + test must be below 1, leaving rows to train on. "
                             f"Received validation={self.validation}, test={self.test}")
        return self


class ImageConfig(Strict):
    """Images as the model's input: which column holds them and how they are read."""

    column: str = Field("image", description="Column of image file paths (csv, parquet, "
                        "image_dir) or of arrays (npz, builtin).")
    size: int | tuple[int, int] = Field(224, description="Side, or (height, width), images are "
                                        "resized to.")
    channels: Literal[1, 3] = Field(3, description="3 for RGB (grey images are repeated), 1 for grey.")
    on_error: Literal["error", "skip"] = Field(
        "error", description="An unreadable image: stop naming the file, or skip it and count.")

    def shape(self) -> tuple[int, int, int]:
        height, width = (self.size, self.size) if isinstance(self.size, int) else self.size
        return (height, width, self.channels)

    @model_validator(mode="after")
    def _size_is_positive(self) -> "ImageConfig":
        sides = (self.size,) if isinstance(self.size, int) else self.size
        if any(side < 8 or side > 4096 for side in sides):
            raise ValueError(f"image sides must be between 8 and 4096. Received size={self.size}")
        return self


class AugmentConfig(Strict):
    """Random image augmentation, on during training only (Keras preprocessing layers)."""

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"
    rotation: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of a full turn.")
    zoom: float = Field(0.0, ge=0.0, lt=1.0)
    contrast: float = Field(0.0, ge=0.0, lt=1.0)


class CsvConfig(Strict):
    """How a csv file is read (pandas.read_csv's sep, decimal and encoding)."""

    sep: str = Field(",", description="The field separator, one character: , ; | or a tab "
                     "(\"\\t\").")
    decimal: Literal[".", ","] = Field(".", description="The decimal mark of numbers.")
    encoding: str = Field("utf-8", description="The text encoding, e.g. utf-8, latin-1, cp1252.")

    @model_validator(mode="after")
    def _options_are_usable(self) -> "CsvConfig":
        import codecs

        if len(self.sep) != 1 or self.sep.isalnum() or self.sep in "\"'\r\n. ":
            raise ValueError(f"sep is one character such as , ; | or a tab (\"\\t\"). "
                             f"Received sep={self.sep!r}")
        if self.sep == self.decimal:
            raise ValueError(f"sep and decimal must differ (a ';'-separated file may use "
                             f"decimal: ','). Received sep={self.sep!r}, decimal={self.decimal!r}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding; use e.g. utf-8, latin-1 or cp1252. "
                             f"Received encoding={self.encoding!r}") from None
        return self


COLUMN_KINDS = ("datetime_parts", "datetime_ordinal", "list_join", "list_length")


class DataConfig(Strict):
    """Where the examples come from and which columns are features."""

    source: Literal["csv", "parquet", "npz", "builtin", "image_dir"]
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
    image: ImageConfig | None = Field(None, description="Set when the input is an image.")
    augment: AugmentConfig | None = Field(None, description="Image augmentation (training only).")
    options: dict[str, Any] = Field(default_factory=dict, description="Arguments of a builtin "
                                    "dataset, e.g. {n: 2000, seed: 0} for shapes.")
    csv: CsvConfig | None = Field(None, description="How the csv file is read: sep, decimal, "
                                  "encoding (source: csv).")
    bad_cells: Literal["error", "missing"] = Field(
        "error", description="Cells that do not fit their column's kind (a word in a mostly "
        "numeric column, a non-date in a date column; in evaluate, a label the run never saw): "
        "error, naming them, or read them as missing and say how many.")
    columns: dict[str, Literal[COLUMN_KINDS]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="How to use a date or list column, which is refused "
        "otherwise: datetime_parts (year, month, day, weekday, hour as numbers), "
        "datetime_ordinal (days since 1970-01-01), list_join (the items joined by '|', one "
        "category), list_length (the number of items).")

    @model_validator(mode="after")
    def _source_needs_its_key(self) -> "DataConfig":
        if self.csv is not None and self.source != "csv":
            raise ValueError(f"`csv` options apply to source: csv. Received source={self.source!r}")
        if self.source == "builtin" and not self.name:
            raise ValueError("source 'builtin' needs `name` (penguins, digits, digits_images, shapes)")
        if self.source == "image_dir" and self.image is None:
            self.image = ImageConfig()
        if self.augment is not None and self.image is None:
            raise ValueError("`augment` applies to image data; set `image` too")
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
    primary_metric: str | None = Field(None, description="The metric of this task that enters "
                                       "Δm in `mtl compare`; default: " + PRIMARY_METRICS + ".")
    weight: float = Field(1.0, ge=0.0, description="Static loss weight w_i (at most 1e6: "
                          "a float32 loss times a larger weight overflows).")
    positive: str | int | bool | None = Field(None, description="Positive class (binary).")
    delimiter: str | None = Field(None, description="Separator of a one-column multilabel label.")
    standardize: bool = Field(True, description="Regression: train on targets standardized with "
                              "the train split's mean and deviation (metrics stay in data units).")
    head: HeadConfig | None = Field(None, description="This task's head; default: model.heads.")
    data: DataConfig | None = Field(None, description="This task's own examples; default: the "
                                    "recipe's data. Tasks with different data are mixed into one "
                                    "stream, each example masked for the tasks it has no label for.")

    @field_validator("weight")
    @classmethod
    def _weight_fits_float32(cls, value: float) -> float:
        # Inf is left to the loader's "a finite number is expected"
        if math.isfinite(value) and value > MAX_TASK_WEIGHT:
            raise ValueError(f"a task weight is at most {MAX_TASK_WEIGHT:g} (a float32 loss "
                             "times a larger weight overflows)")
        return value


MAX_TASK_WEIGHT = 1e6


class BackboneConfig(Strict):
    """A pretrained image backbone: the lower, shared part of the trunk."""

    name: BackboneName = "resnet50"  # type: ignore[valid-type]
    weights: str = Field("imagenet", description="imagenet | none | a weights FILE | "
                         "run:RUN (the backbone of an earlier run: id, prefix or recipe name).")
    pooling: Literal["avg", "max"] = "avg"
    batch_norm: Literal["auto", "frozen", "train"] = Field(
        "auto", description="The backbone's BatchNorm layers: frozen (inference mode, moving "
        "statistics kept: right for pretrained weights), train (batch statistics, updated in "
        "every stage, recalibrated after training), or auto: train when weights is none, "
        "frozen otherwise.")

    def batch_norm_mode(self) -> str:
        """`frozen` or `train`: what `auto` means for these weights (only `none` is not
        pretrained; imagenet, a file and run:RUN are)."""
        if self.batch_norm != "auto":
            return self.batch_norm
        return "train" if self.weights == "none" else "frozen"


class ModelConfig(Strict):
    backbone: BackboneConfig | None = Field(None, description="An image backbone under the trunk.")
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


TRAINABLE_HELP = ("heads (backbone frozen) | all | top:N (last N backbone layers) | top:N% | "
                  "a regular expression over backbone layer names")


class StageConfig(Strict):
    """One stage of a staged schedule (e.g. a frozen warm-up, then fine-tuning)."""

    name: str = Field(pattern=NAME_PATTERN, max_length=32)
    epochs: int = Field(ge=1, le=100_000)
    learning_rate: float = Field(gt=0.0, le=10.0)
    schedule: Literal["constant", "cosine"] = "constant"
    trainable: str = Field("all", description=TRAINABLE_HELP)

    @model_validator(mode="after")
    def _trainable_is_understood(self) -> "StageConfig":
        import re

        value = self.trainable
        if value in ("heads", "all"):
            return self
        match = re.fullmatch(r"top:(\d+)(%?)", value)
        if match:
            if int(match.group(1)) < 1 or (match.group(2) and int(match.group(1)) > 100):
                raise ValueError(f"top:N needs N ≥ 1 (and ≤ 100 with %). Received {value!r}")
            return self
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"trainable is not {TRAINABLE_HELP}: {error}. Received {value!r}")
        return self


class SamplingConfig(Strict):
    """How often each data source is drawn when tasks bring their own data.

    An epoch draws as many training examples as all sources hold together; `proportional`
    is every example once, `uniform` gives every source the same share, `temperature` gives
    source i a share ∝ n_i^(1/T) (T = 1 is proportional, T → ∞ uniform).
    """

    method: Literal["proportional", "uniform", "temperature"] = "proportional"
    temperature: float = Field(2.0, ge=1.0, le=1000.0)


class TrainingConfig(Strict):
    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(32, ge=1, le=1_000_000)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    early_stopping: EarlyStoppingConfig | None = Field(default_factory=EarlyStoppingConfig)
    stages: list[StageConfig] | None = Field(
        None, min_length=1, description="A staged schedule; with a backbone the default is a "
        "frozen warm-up (epochs, learning_rate) then fine-tuning of all layers (epochs, "
        "learning_rate / 100).")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    cache_features: bool = Field(True, description="In stages whose backbone is frozen and with "
                                 "no augmentation, compute backbone features once.")


class RuntimeConfig(Strict):
    """Where and how training runs: device, distribution, precision, compilation."""

    device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="auto: every visible GPU (MirroredStrategy when several), else the CPU.")
    gpus: list[Annotated[int, Field(ge=0)]] | None = Field(None, description="GPU indices to use.")
    strategy: Literal["auto", "default", "mirrored"] = Field(
        "auto", description="mirrored: MirroredStrategy over the chosen GPUs, or over the logical "
        "CPU devices when there is no GPU.")
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "auto", description="auto: mixed_float16 on GPUs of compute capability ≥ 7, else float32.")
    jit_compile: Literal["auto"] | bool = "auto"
    steps_per_execution: int = Field(1, ge=1, le=10_000)
    deterministic: bool = Field(False, description="TensorFlow op determinism (slower).")
    checkpoint_seconds: float = Field(
        30.0, ge=0.0, description="Checkpoint after an epoch once this many seconds passed since "
        "the last one (and always at the end of a stage); 0: after every epoch.")
    checkpoint_steps: int | None = Field(
        None, ge=1, description="Also checkpoint every this many training steps inside an epoch "
        "(for long epochs); a resumed run continues from that step.")
    loop: Literal["auto", "fit", "custom"] | None = Field(
        None, description="Ignored: mtl has one training loop for every case since 0.2. Kept "
        "so that older recipes and the recipe.yaml of older runs still load and resume.")
    peer_check_seconds: int = Field(
        30, ge=1, le=3600, description="Multi-worker: how often each worker checks that the "
        "others still answer; a lost worker fails the run within about this long.")


class TrackingConfig(Strict):
    """Where training is logged besides the run folder's files."""

    tensorboard: bool = Field(True, description="TensorBoard scalars under <run>/tb/.")
    mlflow: bool = Field(False, description="MLflow (pip install 'mtl-runner[mlflow]'), to "
                         "MLFLOW_TRACKING_URI or ./mlruns.")
    histograms: bool = Field(False, description="Weight histograms in TensorBoard (slower).")


class Recipe(Strict):
    """A multi-task experiment: data, tasks, model, loss weighting and training."""

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: str | None = None
    data: DataConfig | None = Field(None, description="The examples; may be left out when every "
                                    "task has its own data.")
    tasks: dict[Annotated[str, Field(pattern=TASK_NAME_PATTERN, max_length=64)], TaskConfig] = Field(
        min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    weighting: WeightingConfig = Field(  # type: ignore[valid-type]
        default_factory=lambda: WEIGHTINGS.get("static").Config())
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    tracking: TrackingConfig | None = Field(None, description="Default: TensorBoard only, or "
                                            "what the MTL_TRACKING variable or --tracking lists.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seeds weights, shuffling and the split.")

    @field_validator("tasks", mode="before")
    @classmethod
    def _at_least_one_task(cls, tasks: Any) -> Any:
        if isinstance(tasks, dict) and not tasks:
            raise ValueError("a recipe needs at least one task, e.g. tasks: {species: {type: "
                             "classification, label: species}}")
        return tasks

    @model_validator(mode="after")
    def _every_task_has_data(self) -> "Recipe":
        own = [name for name, task in self.tasks.items() if task.data is not None]
        if self.data is None:
            if len(own) < len(self.tasks):
                missing = [name for name in self.tasks if name not in own]
                raise ValueError(f"`data` is required unless every task has its own; tasks without "
                                 f"data: {', '.join(missing)}")
            self.data = self.tasks[own[0]].data.model_copy(deep=True)
        if own and any(self.tasks[n].data.image is not None for n in own):
            raise ValueError("tasks with their own data read tables; image input with per-task "
                             "data is not supported")
        return self

    @model_validator(mode="after")
    def _backbone_needs_images_and_gets_stages(self) -> "Recipe":
        if self.model.backbone is not None:
            if self.data.image is None:
                raise ValueError("model.backbone needs image input: set data.image "
                                 "(or use source: image_dir)")
            if self.training.stages is None:
                rate = self.training.optimizer.learning_rate
                self.training.stages = [
                    StageConfig(name="warmup", epochs=self.training.epochs, learning_rate=rate,
                                trainable="heads"),
                    StageConfig(name="finetune", epochs=self.training.epochs,
                                learning_rate=rate / 100, trainable="all"),
                ]
        elif self.training.stages is not None:
            for stage in self.training.stages:
                if stage.trainable not in ("heads", "all"):
                    raise ValueError(f"stage '{stage.name}': trainable {stage.trainable!r} needs "
                                     "model.backbone; without one use heads or all")
        for block, tasks in self.data_groups():  # stratify resolved, so baselines split the same way
            if block.split.stratify is True:
                labels = [self.tasks[t].label for t in tasks
                          if TASK_TYPES.get(self.tasks[t].type).stratifies]
                block.split.stratify = labels[0] if labels else False
        names = [stage.name for stage in self.training.stages or []]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique. Received {names}")
        return self

    def split_seed(self, block: DataConfig | None = None) -> int:
        split = (block or self.data).split
        return split.seed if split.seed is not None else self.seed

    def data_groups(self) -> list[tuple[DataConfig, list[str]]]:
        """The data sources and the tasks each one labels, in task order.

        Tasks without their own `data` share the recipe's; tasks whose blocks are equal share one.
        """
        groups: list[tuple[DataConfig, list[str]]] = []
        for name, task in self.tasks.items():
            block = task.data or self.data
            for known, names in groups:
                if known == block:
                    names.append(name)
                    break
            else:
                groups.append((block, [name]))
        return groups
