"""`mtl train`: one recipe in, one complete run directory out.

The run directory is created first and marked `running`; whatever happens next, it ends
`completed`, `failed` (with the reason) or `interrupted`, keeping what was written before.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import traceback
from pathlib import Path
from typing import Callable

import yaml

from mtl_runner import __version__
from mtl_runner.errors import MtlError, RunError
from mtl_runner.recipe import LoadedRecipe
from mtl_runner.results import RunDirectory
from mtl_runner.results.run_dir import utc_now
from mtl_runner.training.device import import_tensorflow, reset_runtime, setup_runtime

Echo = Callable[[str], None]


def resolved_recipe_yaml(loaded: LoadedRecipe) -> str:
    """The recipe as it ran: defaults filled in, overrides applied."""
    data = loaded.recipe.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def versions() -> dict:
    import keras
    import numpy
    import pandas

    tf = import_tensorflow()

    return {"mtl": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}


def start_run(loaded: LoadedRecipe, results: str | Path, name: str | None,
              command: list[str], role: str = "mtl", parent: str | None = None) -> RunDirectory:
    """Creates the run directory, writes the resolved recipe and marks the run `running`."""
    recipe = loaded.recipe
    run = RunDirectory.create(results, name or recipe.name)
    text = resolved_recipe_yaml(loaded)
    run.write_text("recipe.yaml", text)
    run.write_json("run.json", {
        "id": run.run_id, "name": name or recipe.name, "recipe_name": recipe.name,
        "status": "running", "error": None, "role": role, "parent": parent,
        "started_at": utc_now().isoformat(), "finished_at": None, "duration_s": None,
        "command": command, "recipe_file": str(loaded.path), "overrides": loaded.overrides,
        "seed": recipe.seed, "pid": os.getpid(), "host": socket.gethostname(),
        "recipe_sha256": text_digest(text),
    })
    return run


def text_digest(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes (run.json keeps the resolved recipe's, so a resume
    can tell that recipe.yaml was edited after the run started)."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def train(loaded: LoadedRecipe, results: str | Path, name: str | None = None,
          command: list[str] | None = None, echo: Echo = print, role: str = "mtl",
          parent: str | None = None, resume: RunDirectory | None = None) -> RunDirectory:
    """Trains a recipe and writes its run directory.

    Args:
        loaded: a validated recipe (its data checks already run).
        results: the results folder.
        name: the run name (default: the recipe's name).
        command: the command line, recorded in run.json.
        echo: where progress lines go.
        role: "mtl", or "baseline:<task>" for a single-task baseline.
        parent: the run this one belongs to (a baseline's multi-task run).
        resume: an interrupted, failed or crashed run to continue from its last checkpoint.

    Returns:
        The completed run directory.

    Raises:
        RunError: the run failed; the run directory says why.
    """
    from mtl_runner.training.cluster import ClusterRole

    import_tensorflow()  # first, so that its start-up lines are captured (Keras imports it too)
    cluster = ClusterRole.from_env()
    if cluster.multi_worker and not cluster.is_chief:
        return train_as_worker(cluster, loaded, results, name, command, echo, role, parent, resume)
    return train_here(loaded, results, name, command, echo, role, parent, resume)


def train_as_worker(cluster, loaded: LoadedRecipe, results: str | Path, name: str | None,
                    command: list[str] | None, echo: Echo, role: str, parent: str | None,
                    resume: RunDirectory | None) -> RunDirectory:
    """A worker other than the chief: the same training, in lockstep with the chief, writing
    its run directory (and nothing else: no tracking) into a temporary folder it deletes."""
    import dataclasses
    import shutil
    import tempfile

    from mtl_runner.recipe.schema import TrackingConfig

    scratch = Path(tempfile.mkdtemp(prefix=f"mtl-{cluster.task_type}{cluster.task_index}-"))
    echo(f"{cluster.name} of {cluster.workers} workers: training in lockstep with the chief, "
         "which writes the run directory")
    untracked = loaded.recipe.model_copy(
        update={"tracking": TrackingConfig(tensorboard=False, mlflow=False, histograms=False)})
    try:
        if resume is not None:  # the chief's checkpoints, read through a shared file system
            copy = scratch / resume.path.name
            shutil.copytree(resume.path, copy)
            resume = RunDirectory(copy)
        return train_here(dataclasses.replace(loaded, recipe=untracked), scratch, name, command,
                          echo, role, parent, resume, source_results=results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def train_here(loaded: LoadedRecipe, results: str | Path, name: str | None,
               command: list[str] | None, echo: Echo, role: str, parent: str | None,
               resume: RunDirectory | None, source_results: str | Path | None = None) -> RunDirectory:
    """`train` in this process's own run directory; earlier runs (`run:` weights) are looked up
    in `source_results` (default: `results`)."""
    from mtl_runner.training.interrupts import stop_on_signals
    from mtl_runner.training.tracking import finish_tracking

    if resume is None:
        run = start_run(loaded, results, name, command or sys.argv, role, parent)
    else:
        run = resume
        run.update(status="running", error=None, pid=os.getpid(), host=socket.gethostname(),
                   resumed=[*run.read_json().get("resumed", []), utc_now().isoformat()])
    echo(f"Run {run.run_id}: {run.path}")
    for warning in loaded.warnings:  # printed when the recipe loaded; kept with the run
        run.add_warning(warning)
    try:
        with stop_on_signals():
            _train(loaded, run, source_results or results, echo, resume is not None)
    except KeyboardInterrupt:
        where = last_checkpoint(run)
        then = ("continue with" if where.startswith("last") else "start it again in the same folder with")
        run.finish("interrupted", f"interrupted (Ctrl-C or SIGTERM), {where}; "
                   f"{then} mtl train --resume {run.run_id}")
        raise RunError(f"interrupted; what was written so far is in {run.path}. Continue with "
                       f"mtl train --resume {run.run_id}") from None
    except MtlError as error:
        run.finish("failed", error.format_message())
        raise
    except Exception as error:  # noqa: BLE001 - any failure must leave the run marked failed
        message = f"{type(error).__name__}: {error}".strip()
        run.finish("failed", message, traceback=traceback.format_exc())
        raise RunError(f"run failed: {message.splitlines()[0][:300]}. "
                       f"Details in {run.file('run.json')}") from None
    finally:
        finish_tracking(run)
    return run


def last_checkpoint(run: RunDirectory) -> str:
    """Where the run's latest checkpoint stands, in words."""
    from mtl_runner.training.checkpoints import ResumePoint

    try:
        point = ResumePoint.read(run)
    except MtlError:
        point = None
    if point is None:
        return "before its first checkpoint"
    return f"last checkpoint {point.latest.describe()}"


def weights_digest(model) -> str:
    """SHA-256 of every weight's bytes in order: equal digests mean identical models."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _train(loaded: LoadedRecipe, run: RunDirectory, results: str | Path, echo: Echo,
           resuming: bool = False) -> None:
    import_tensorflow()
    import keras

    from mtl_runner.data.sources import read_source
    from mtl_runner.models.batch_norm import check_features, finish_batch_norm
    from mtl_runner.models.build import build_model
    from mtl_runner.training.callbacks import HistoryWriter
    from mtl_runner.training.checkpoints import ResumePoint, readable_position, restore
    from mtl_runner.training.evaluate import evaluate, metrics_table
    from mtl_runner.training.loop import StageResult, fit_stage
    from mtl_runner.training.prepare import prepare
    from mtl_runner.training.stages import stage_plan
    from mtl_runner.training.weights import load_backbone_weights

    recipe = loaded.recipe
    point = ResumePoint.read(run) if resuming else None
    if resuming and point is None:
        echo(f"run {run.run_id} saved no checkpoint before it stopped: training it again from the "
             "start, in the same folder")
    runtime = setup_runtime(recipe.runtime, recipe.training.batch_size)
    try:
        run.update(**runtime.record(), versions=versions())
        echo(f"Device: {runtime.device}, {runtime.strategy_name} with {runtime.replicas} "
             f"replica(s), batch {recipe.training.batch_size // runtime.replicas} per replica, "
             f"{runtime.precision}")
        keras.utils.set_random_seed(recipe.seed)  # the same on resume: checkpoints carry RNG state

        frames = loaded.frames or [read_source(block, loaded.resolve_path)
                                   for block, _ in recipe.data_groups()]
        prepared = prepare(frames[0], recipe, frames)
        spec = prepared.spec
        run.update(splits=prepared.sizes,
                   features=spec.to_dict() if spec else {"image": recipe.data.image.shape()},
                   label_encoding=prepared.infos, skipped_images=prepared.skipped)
        if prepared.skipped:
            echo(f"skipped {len(prepared.skipped)} unreadable image(s), e.g. {prepared.skipped[0]}")
        inputs = (f"{len(spec.numeric)} numeric and {len(spec.categorical)} categorical features"
                  if spec else "images of {}×{}×{}".format(*recipe.data.image.shape()))
        echo(f"Data: {sum(prepared.sizes.values())} rows → train {prepared.sizes['train']}, "
             f"validation {prepared.sizes['validation']}, test {prepared.sizes['test']}; {inputs}; "
             f"tasks: {', '.join(prepared.tasks)}")

        with runtime.strategy.scope():
            model = build_model(recipe, spec, prepared.tasks, prepared.infos)
            if recipe.model.backbone is not None and point is None:
                parent = load_backbone_weights(model, recipe.model.backbone, results)
                if parent:
                    run.update(parent=parent)
                    echo(f"backbone weights from run {parent}")

        stages = stage_plan(recipe)
        total = sum(stage.epochs for stage in stages)
        history = HistoryWriter(run)
        position = readable_position(run, point, echo) if point is not None else None
        done: list[StageResult] = []
        if position is not None:
            history.keep_until(position.epoch)
            done = [StageResult(**r, last_epoch=0) for r in position.stages]
            if position.stage >= len(stages):  # training was over: the final weights, as saved
                with runtime.strategy.scope():
                    restore(run, position, model)
                echo(f"resuming after training ended (epoch {position.epoch}) from checkpoint "
                     f"{position.checkpoint}: evaluating and saving the trained model")
        feature_cache: dict = {}
        epoch = position.stage_first_epoch if position else 0
        if position is None:
            check_features(model, recipe, prepared, run, echo)
        for index, stage in enumerate(stages):
            if position is not None and index < position.stage:
                continue
            result = fit_stage(model, stage, prepared, recipe, history, epoch, total, echo,
                               feature_cache, runtime, index,
                               position if position is not None and index == position.stage else None,
                               [r.to_dict() for r in done])
            done.append(result)
            epoch = result.last_epoch
            run.update(stages=[r.to_dict() for r in done])
        finish_batch_norm(model, recipe, prepared, run, echo)  # before the test split sees it
        train_seconds = sum(r.seconds for r in done)

        # every worker evaluates, not only the chief: under MultiWorkerMirroredStrategy Keras'
        # predict may join collectives, and workers must stay on the same path
        if done[-1].cached_features and "prepared" in feature_cache:  # backbone unchanged since cached
            from mtl_runner.models.images import DECODER

            metrics = evaluate(model.get_layer(DECODER), feature_cache["prepared"],
                               recipe.training.batch_size)
        else:
            metrics = evaluate(model, prepared, recipe.training.batch_size)
        run.write_frame("metrics.csv", metrics)
        digest = weights_digest(model)
        run.update(weights_sha256=digest)
        if runtime.workers > 1:  # the same on every worker, or they did not train in lockstep
            echo(f"final weights sha256 {digest}")
        temporary = run.file(".model.tmp.keras")
        model.save(temporary)
        os.replace(temporary, run.file("model.keras"))
    finally:
        reset_runtime()
    last = done[-1]
    run.finish("completed", epochs=epoch, best_epoch=last.best_epoch,
               train_seconds=round(train_seconds, 3), parameters=int(model.count_params()),
               feature_cache=any(r.cached_features for r in done))
    echo("")
    echo(metrics_table(metrics))
    echo(f"\nRun {run.run_id} completed in {train_seconds:.1f}s ({epoch} epochs): {run.path}")
