"""Training one stage: freeze what the stage freezes, compile, fit, stop early, record."""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import keras
import numpy as np

from mtl_runner.errors import RunError
from mtl_runner.models.images import DECODER, encoder_and_backbone
from mtl_runner.tasks.base import HIGHER_IS_BETTER
from mtl_runner.training.callbacks import (EpochLine, HistoryWriter, NameSingleTask,
                                           ResumableEarlyStopping, StopOnNaN)
from mtl_runner.training.compile import build_optimizer, compile_for_training
from mtl_runner.training.interrupts import StopOnSignal
from mtl_runner.training.prepare import Prepared, make_dataset, steps_per_epoch
from mtl_runner.training.stages import can_cache_features, set_trainable, trainable_count
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


def monitor_mode(monitor: str) -> str:
    """'max' for metrics where higher is better (accuracy, auc, ...), else 'min'."""
    for metric, higher in HIGHER_IS_BETTER.items():
        if monitor == metric or monitor.endswith("_" + metric):
            return "max" if higher else "min"
    return "min"


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


def early_stopping(stopping, run, position=None) -> ResumableEarlyStopping | None:
    """The stage's early stopping (None without `training.early_stopping`), with the progress
    a resumed run's checkpoint recorded."""
    from mtl_runner.training.checkpoints import read_best_weights

    if stopping is None:
        return None
    progress, best_weights = None, None
    if position is not None and position.early_stopping is not None:
        progress, best_weights = position.early_stopping, read_best_weights(run, position)
    return ResumableEarlyStopping(
        progress, best_weights, monitor=stopping.monitor, patience=stopping.patience,
        min_delta=stopping.min_delta, mode=monitor_mode(stopping.monitor),
        restore_best_weights=stopping.restore_best_weights, verbose=0)


def fit_stage(model: keras.Model, stage, prepared: Prepared, recipe, history: HistoryWriter,
              first_epoch: int, total_epochs: int, echo, feature_cache: dict, runtime=None,
              stage_index: int = 0, resume=None, finished: list | None = None) -> StageResult:
    """Trains one stage and returns what it did.

    Args:
        model: the network; its layers' `trainable` flags are set for this stage.
        stage: the `StageConfig`.
        prepared: data of every split.
        recipe: the validated recipe.
        history: the history.csv writer (shared across stages).
        first_epoch: epochs already run by earlier stages.
        total_epochs: the planned epochs of all stages, for progress lines.
        echo: progress output.
        feature_cache: {"prepared": ...} once features were computed (reused across stages).
        runtime: the `Runtime` (distribution strategy); None for the default one.
        stage_index: the stage's position, recorded with each checkpoint.
        resume: a checkpoint `Position` inside this stage: restore it and run the epochs left
            (none when early stopping had already ended the stage).
        finished: what the earlier stages did (`StageResult.to_dict()`), kept with checkpoints.
    """
    import contextlib

    from mtl_runner.training.checkpoints import Checkpointer, restore

    training = recipe.training
    tasks = list(prepared.tasks)
    set_trainable(model, stage.trainable, tasks,
                  recipe.model.backbone.batch_norm_mode() if recipe.model.backbone else "frozen")
    cached = can_cache_features(model, recipe, stage)
    started = time.perf_counter()  # a stage's time includes computing its cached features
    target, data = model, prepared
    if cached:
        if "prepared" not in feature_cache:
            feature_cache["prepared"] = cached_features(model, prepared, training.batch_size, echo)
        target, data = model.get_layer(DECODER), feature_cache["prepared"]

    rate = stage.learning_rate
    if stage.schedule == "cosine":
        steps = math.ceil(prepared.sizes["train"] / training.batch_size) * stage.epochs
        rate = keras.optimizers.schedules.CosineDecay(stage.learning_rate, decay_steps=max(steps, 1))

    def scope():
        return runtime.strategy.scope() if runtime is not None else contextlib.nullcontext()

    with scope():
        optimizer = build_optimizer(training.optimizer.model_copy(update={"learning_rate": rate}))
        trainer = compile_for_training(target, recipe, prepared.tasks, prepared.infos, optimizer)
    stage_first_epoch, epochs_left, first_step = first_epoch, stage.epochs, 0
    if resume is not None:
        with scope():
            restore(history.run, resume, model, trainer)
        stage_first_epoch = resume.stage_first_epoch
        first_epoch = resume.epoch
        epochs_left = (0 if resume.stopped
                       else stage.epochs - (resume.epoch - resume.stage_first_epoch))
        first_step = resume.step
        echo(f"resuming stage {stage.name} {resume.describe()} from checkpoint {resume.checkpoint}"
             f"{' (early stopping had ended it)' if resume.stopped else ''}")

    steps = steps_per_epoch(data, "train", training.batch_size)
    train_data = make_dataset(data, "train", training.batch_size, recipe.seed, shuffle=True,
                              first_epoch=first_epoch)
    validation_data = (make_dataset(data, "validation", training.batch_size, recipe.seed, False)
                       if prepared.sizes["validation"] else None)
    history.stage = stage.name
    stop_on_nan = StopOnNaN()
    stopping = training.early_stopping
    early = early_stopping(stopping, history.run, resume)
    checkpointer = Checkpointer(history.run, model, trainer, stage_index, stage_first_epoch,
                                steps, recipe.runtime.checkpoint_seconds,
                                recipe.runtime.checkpoint_steps, first_step, early, finished,
                                enabled=runtime is None or runtime.chief)
    # early stopping decides before the checkpointer saves its progress
    callbacks: list = [history, stop_on_nan, *([early] if early else []), checkpointer,
                       StopOnSignal(checkpointer)]
    callbacks += extra_callbacks(history.run, recipe, stage.name)
    if validation_data is not None:  # BatchNorm that trains: current statistics for validation
        from mtl_runner.models.batch_norm import validation_callbacks

        callbacks[:0] = validation_callbacks(model, recipe, prepared)
    if len(tasks) == 1:
        callbacks.insert(0, NameSingleTask(tasks[0]))
    interactive = sys.stdout.isatty()
    if not interactive:
        callbacks.append(EpochLine(total_epochs, echo, stopping.monitor if stopping else None,
                                   stage=stage.name if training.stages else None))
    trainable = trainable_count(model)
    if training.stages:
        echo(f"stage {stage.name}: {stage.epochs} epochs, learning rate {stage.learning_rate:g}"
             f"{' (cosine)' if stage.schedule == 'cosine' else ''}, trainable {stage.trainable} "
             f"({trainable:,} parameters){', cached backbone features' if cached else ''}")

    def fit(dataset, first: int, last: int, steps_in_epoch: int):
        options = dict(validation_data=validation_data, initial_epoch=first, epochs=last,
                       steps_per_epoch=steps_in_epoch, callbacks=callbacks,
                       verbose=1 if interactive else 0)
        if runtime is not None and runtime.loop == "custom":
            from mtl_runner.training.custom_loop import CustomLoop

            return CustomLoop(trainer).fit(
                dataset, validation_steps=steps_per_epoch(data, "validation", training.batch_size),
                **options).history.get("loss", [])
        # the dataset shuffles itself
        return trainer.fit(dataset, shuffle=False, **options).history.get("loss", [])

    last_epoch, whole_from = first_epoch + epochs_left, first_epoch
    losses: list = []
    if first_step and epochs_left > 0:
        # resumed mid-epoch: the rest of that epoch first (its logs cover those steps only)
        if early is not None:
            early.final = False  # the stage goes on: keep the weights, carry the progress over
        losses += fit(train_data.skip(first_step), first_epoch, first_epoch + 1, steps - first_step)
        if early is not None:
            early.final = True
        whole_from += 1
        train_data = make_dataset(data, "train", training.batch_size, recipe.seed, shuffle=True,
                                  first_epoch=whole_from)
    if whole_from < last_epoch and not trainer.stop_training:
        losses += fit(train_data, whole_from, last_epoch, steps)
    elif not losses:
        finish_without_training(early, trainer)
    seconds = time.perf_counter() - started
    if stop_on_nan.bad_epoch is not None:
        raise RunError(f"the loss became NaN or Inf at epoch {stop_on_nan.bad_epoch}; lower "
                       f"the learning rate or set training.optimizer.clipnorm")
    epochs = len(losses) + (first_epoch - stage_first_epoch)
    best = getattr(early, "best_epoch", None) if early is not None else None
    result = StageResult(stage.name, stage.trainable, epochs,
                         None if best is None else int(best) + 1, trainable, cached,
                         round(seconds, 3), stage_first_epoch + epochs)
    checkpointer.save(stage_first_epoch + epochs, stage_done=True, result=result.to_dict())
    return result


def finish_without_training(early: ResumableEarlyStopping | None, trainer) -> None:
    """A resumed stage with no epoch left to train ends as a trained one does: early stopping
    restores its best weights (Keras does so in `on_train_end` whenever it holds some)."""
    if early is None:
        return
    early.set_model(trainer)
    early.on_train_begin()  # takes the carried progress and best weights
    early.on_train_end()
