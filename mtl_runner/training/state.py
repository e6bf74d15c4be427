"""`TrainingState`: where training stands — the one thing a checkpoint saves and a resume restores.

The loop (`training/loop.py`) advances it step by step and epoch by epoch; early stopping
records its progress in it; the checkpointer writes it into `checkpoints/state.json` beside each
checkpoint; `mtl train --resume` reads it back and the loop continues from exactly there.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TrainingState:
    """Where training stands.

    Attributes:
        checkpoint: the checkpoint this state was saved with (`ckpt-<steps>`); "" before any.
        stage: the stage in progress (the number of stages once training is over).
        stage_first_epoch: epochs done before that stage began.
        epoch: epochs completed, counted over all stages.
        step: steps of epoch `epoch + 1` already trained.
        early_stopping: the stage's early-stopping progress (`EarlyStopping.progress()`: wait,
            best, best_epoch, and the file of its best weights), None without early stopping.
        stopped: early stopping ended the stage at `epoch`; what is left is to finish it.
        stages: what each finished stage did (`StageResult.to_dict()`), for run.json.
    """

    checkpoint: str = ""
    stage: int = 0
    stage_first_epoch: int = 0
    epoch: int = 0
    step: int = 0
    early_stopping: dict | None = None
    stopped: bool = False
    stages: list = dataclasses.field(default_factory=list)

    @property
    def stage_start(self) -> bool:
        """At the very start of a stage, whose optimizer is new: only the network carries over."""
        return self.epoch == self.stage_first_epoch and self.step == 0

    def describe(self) -> str:
        steps = f" and {self.step} steps" if self.step else ""
        return f"after epoch {self.epoch}{steps}"

    def finish_epoch(self) -> None:
        self.epoch += 1
        self.step = 0

    def finish_stage(self, result: dict) -> None:
        """The stage is done: the state now points at the start of the next one."""
        self.stage += 1
        self.stage_first_epoch = self.epoch
        self.step = 0
        self.early_stopping = None
        self.stopped = False
        self.stages = [*self.stages, result]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainingState":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})
