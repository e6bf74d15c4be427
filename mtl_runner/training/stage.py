"""Training one stage: freeze what the stage freezes, compile, run the loop, record."""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import keras
import numpy as np

from mtl_runner.errors import RunError
from mtl_runner.models.images import DECODER, encoder_and_backbone
from mtl_runner.models.parts import split_variables
from mtl_runner.training.checkpoints import Checkpointer, restore
from mtl_runner.training.compile import build_optimizer, compile_for_training
from mtl_runner.training.early_stopping import EarlyStopping
from mtl_runner.training.history import HistoryWriter
from mtl_runner.training.loop import Loop, Observers, StageData
from mtl_runner.training.prepare import Prepared, make_dataset, steps_per_epoch
from mtl_runner.training.progress import EpochLine
from mtl_runner.training.stages import can_cache_features, set_trainable, trainable_count
from mtl_runner.training.state import TrainingState
from mtl_runner.training.tracking import extra_callbacks


@dataclasses.dataclass
class StageResult:
    name: str
    trainable: str
    epochs: int
    best_epoch: int | None
    trainable_parameters: int
    cached_features: bool
    seconds: float
    last_epoch: int

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "last_epoch"}


def cached_features(model: keras.Model, prepared: Prepared, batch_size: int, echo) -> Prepared:
    """The backbone's features of every split, computed once (the encoder is frozen and runs
    in inference mode, so they are what every epoch would compute again)."""
    import tensorflow as tf

    encoder, _ = encoder_and_backbone(model)
    started = time.perf_counter()
    sample = next(iter(prepared.x.values()))["image"]
    # One trace for every split and batch size: `predict` traces anew for each split's last,
    # smaller batch, which cost more than computing the features of a few hundred images.
    encode = tf.function(lambda x: encoder(tf.cast(x, "float32"), training=False),
                         input_signature=[tf.TensorSpec((None, *sample.shape[1:]), sample.dtype)])
    batch = max(batch_size, 256)
    features = {}
    for split, inputs in prepared.x.items():
        images = inputs["image"]
        features[split] = {"features": np.concatenate(
            [encode(images[i:i + batch]).numpy() for i in range(0, len(images), batch)])
            if prepared.sizes[split] else tf.zeros((0, encoder.output.shape[-1])).numpy()}
    echo(f"cached backbone features of {sum(prepared.sizes.values())} images in "
         f"{time.perf_counter() - started:.1f}s")
    return prepared.with_inputs(features)


@dataclasses.dataclass
class Session:
    """What every stage of a run shares."""

    model: keras.Model  # the network, whose layers' `trainable` flags each stage sets
    prepared: Prepared  # data of every split
    recipe: object  # the validated recipe
    history: HistoryWriter  # history.csv, shared across stages
    runtime: object  # the `Runtime` (distribution strategy, workers)
    echo: object  # progress output
    total_epochs: int  # the planned epochs of all stages, for progress lines
    feature_cache: dict = dataclasses.field(default_factory=dict)  # {"prepared": cached features}

    @property
    def run(self):
        return self.history.run


def fit_stage(session: Session, index: int, stage, state: TrainingState,
              resumed: bool = False) -> StageResult:
    """Trains stage `index` (a `StageConfig`) from `state` and returns what it did; `state`
    then points at the next stage.

    Args:
        resumed: `state` is a resumed run's checkpoint inside this stage, restored first.
    """
    recipe, model, prepared = session.recipe, session.model, session.prepared
    set_trainable(model, stage.trainable, list(prepared.tasks),
                  recipe.model.backbone.batch_norm_mode() if recipe.model.backbone else "frozen")
    started = time.perf_counter()  # a stage's time includes computing its cached features
    cached, target, data = stage_inputs(session, stage)
    with session.runtime.strategy.scope():
        trainer = compile_for_training(target, recipe, prepared.tasks, prepared.infos,
                                       stage_optimizer(stage, recipe, prepared))
        if resumed:
            restore(session.run, state, model, trainer)
    if resumed:
        session.echo(f"resuming stage {stage.name} {state.describe()} from checkpoint "
                     f"{state.checkpoint}{' (early stopping had ended it)' if state.stopped else ''}")
    trainable = trainable_count(model)
    if recipe.training.stages:
        session.echo(f"stage {stage.name}: {stage.epochs} epochs, learning rate "
                     f"{stage.learning_rate:g}{' (cosine)' if stage.schedule == 'cosine' else ''}, "
                     f"trainable {stage.trainable} ({trainable:,} parameters)"
                     f"{', cached backbone features' if cached else ''}")
    if trainer.weighting.level == "gradient" and not split_variables(trainer.network, list(prepared.tasks))[0]:
        session.echo(f"stage {stage.name}: no shared variable trains, so {recipe.weighting.name} has "
                     "nothing to combine; each head follows its own task's loss")
    observers = stage_observers(session, stage, state, trainer)
    session.history.stage = stage.name
    logs = Loop(trainer, recipe.runtime.steps_per_execution, session.runtime.workers).fit(
        state, state.stage_first_epoch + stage.epochs, stage_data(data, recipe, state), observers)
    if not math.isfinite(logs.get("loss", 0.0)):
        raise RunError(f"the loss became NaN or Inf at epoch {state.epoch}; lower "
                       f"the learning rate or set training.optimizer.clipnorm")
    if observers.early is not None:
        observers.early.restore(trainer)
    best = observers.early.best_epoch + 1 if observers.early and observers.early.best is not None else None
    result = StageResult(stage.name, stage.trainable, state.epoch - state.stage_first_epoch, best,
                         trainable, cached, round(time.perf_counter() - started, 3), state.epoch)
    state.finish_stage(result.to_dict())
    observers.checkpointer.save(state)
    return result


def stage_inputs(session: Session, stage):
    """(cached, model trained, its data): the decoder on cached backbone features when the
    stage allows it, else the whole network on the prepared data."""
    model, prepared = session.model, session.prepared
    if not can_cache_features(model, session.recipe, stage):
        return False, model, prepared
    if "prepared" not in session.feature_cache:
        session.feature_cache["prepared"] = cached_features(
            model, prepared, session.recipe.training.batch_size, session.echo)
    return True, model.get_layer(DECODER), session.feature_cache["prepared"]


def stage_optimizer(stage, recipe, prepared):
    rate = stage.learning_rate
    if stage.schedule == "cosine":
        steps = math.ceil(prepared.sizes["train"] / recipe.training.batch_size) * stage.epochs
        rate = keras.optimizers.schedules.CosineDecay(stage.learning_rate, decay_steps=max(steps, 1))
    return build_optimizer(recipe.training.optimizer.model_copy(update={"learning_rate": rate}))


def stage_data(data: Prepared, recipe, state: TrainingState) -> StageData:
    """The stage's datasets, the training one starting at the state's epoch and step."""
    batch = recipe.training.batch_size
    train = make_dataset(data, "train", batch, recipe.seed, shuffle=True, first_epoch=state.epoch)
    validation = (make_dataset(data, "validation", batch, recipe.seed, False)
                  if data.sizes["validation"] else None)
    return StageData(train.skip(state.step), steps_per_epoch(data, "train", batch), validation,
                     steps_per_epoch(data, "validation", batch))


def stage_observers(session: Session, stage, state: TrainingState, trainer) -> Observers:
    """History, early stopping (with the state's progress), checkpoints and callbacks."""
    recipe, model, runtime = session.recipe, session.model, session.runtime
    stopping = recipe.training.early_stopping
    early = early_stopping(stopping, session.run, state)
    steps = steps_per_epoch(session.prepared, "train", recipe.training.batch_size)
    checkpointer = Checkpointer(session.run, model, trainer, steps, recipe.runtime.checkpoint_seconds,
                                recipe.runtime.checkpoint_steps, early, enabled=runtime.chief)
    callbacks = list(extra_callbacks(session.run, recipe, stage.name))
    if session.prepared.sizes["validation"]:  # BatchNorm that trains: current statistics
        from mtl_runner.models.batch_norm import validation_callbacks

        callbacks[:0] = validation_callbacks(model, recipe, session.prepared)
    interactive = sys.stdout.isatty()
    line = None if interactive else EpochLine(
        session.total_epochs, session.echo, stopping.monitor if stopping else None,
        stage=stage.name if recipe.training.stages else None)
    tasks = list(session.prepared.tasks)
    return Observers(session.history, checkpointer, early, callbacks, line,
                     tasks[0] if len(tasks) == 1 else None, progress_bar=interactive)


def early_stopping(stopping, run, state: TrainingState) -> EarlyStopping | None:
    """The stage's early stopping (None without `training.early_stopping`), with the progress
    the state records (a resumed run's checkpoint)."""
    from mtl_runner.training.checkpoints import read_best_weights

    if stopping is None:
        return None
    if state.early_stopping is None:
        return EarlyStopping(stopping)
    return EarlyStopping(stopping, state.early_stopping, read_best_weights(run, state))
