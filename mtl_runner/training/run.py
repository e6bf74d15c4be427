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

from mtl_runner import __version__
from mtl_runner.errors import MtlError, RunError
from mtl_runner.recipe import LoadedRecipe
from mtl_runner.results import RunDirectory
from mtl_runner.results.identity import recipe_digest, resolved_text
from mtl_runner.results.run_dir import utc_now
from mtl_runner.training.device import import_tensorflow, reset_runtime, setup_runtime

Echo = Callable[[str], None]


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
    text = resolved_text(recipe)
    run.write_text("recipe.yaml", text)
    run.write_json("run.json", {
        "id": run.run_id, "name": name or recipe.name, "recipe_name": recipe.name,
        "status": "running", "error": None, "role": role, "parent": parent,
        "started_at": utc_now().isoformat(), "finished_at": None, "duration_s": None,
        "command": command, "recipe_file": str(loaded.path), "overrides": loaded.overrides,
        "seed": recipe.seed, "pid": os.getpid(), "host": socket.gethostname(),
        "recipe_sha256": recipe_digest(text),
    })
    return run


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
    """The run's steps: devices, data, model, stages, final evaluation, saved model."""
    from mtl_runner.models.batch_norm import finish_batch_norm
    from mtl_runner.training.checkpoints import ResumePoint
    from mtl_runner.training.history import HistoryWriter
    from mtl_runner.training.stage import Session
    from mtl_runner.training.stages import stage_plan

    import_tensorflow()
    recipe = loaded.recipe
    point = ResumePoint.read(run) if resuming else None
    if resuming and point is None:
        echo(f"run {run.run_id} saved no checkpoint before it stopped: training it again from the "
             "start, in the same folder")
    runtime = setup_runtime(recipe.runtime, recipe.training.batch_size)
    try:
        start_devices(run, recipe, runtime, echo)
        prepared = read_data(loaded, run, echo)
        model = build_network(recipe, prepared, runtime, results, run, echo, fresh=point is None)
        stages = stage_plan(recipe)
        session = Session(model, prepared, recipe, HistoryWriter(run), runtime, echo,
                          sum(stage.epochs for stage in stages))
        done, epochs = train_stages(session, stages, point)
        finish_batch_norm(model, recipe, prepared, run, echo)  # before the test split sees it
        metrics = evaluate_and_save(session, done)
    finally:
        reset_runtime()
    finish(run, model, done, epochs, metrics, echo)


def start_devices(run: RunDirectory, recipe, runtime, echo: Echo) -> None:
    import keras

    run.update(**runtime.record(), versions=versions())
    echo(f"Device: {runtime.device}, {runtime.strategy_name} with {runtime.replicas} "
         f"replica(s), batch {recipe.training.batch_size // runtime.replicas} per replica, "
         f"{runtime.precision}")
    keras.utils.set_random_seed(recipe.seed)  # the same on resume: checkpoints carry RNG state


def read_data(loaded: LoadedRecipe, run: RunDirectory, echo: Echo):
    """The recipe's data, split, encoded and described in run.json and one line."""
    from mtl_runner.data.sources import read_source
    from mtl_runner.training.prepare import prepare

    recipe = loaded.recipe
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
    return prepared


def build_network(recipe, prepared, runtime, results: str | Path, run: RunDirectory, echo: Echo,
                  fresh: bool):
    """The network, with a backbone's starting weights on a fresh run (a resumed one restores
    its checkpoint instead)."""
    from mtl_runner.models.batch_norm import check_features
    from mtl_runner.models.build import build_model
    from mtl_runner.training.weights import load_backbone_weights

    with runtime.strategy.scope():
        model = build_model(recipe, prepared.spec, prepared.tasks, prepared.infos)
        if recipe.model.backbone is not None and fresh:
            parent = load_backbone_weights(model, recipe.model.backbone, results)
            if parent:
                run.update(parent=parent)
                echo(f"backbone weights from run {parent}")
    if fresh:
        check_features(model, recipe, prepared, run, echo)
    return model


def train_stages(session, stages: list, point) -> tuple[list, int]:
    """Every stage from where the run stands (its start, or a resumed run's readable
    checkpoint); returns the stages' results and the epochs trained in all."""
    from mtl_runner.training.checkpoints import readable_position, restore
    from mtl_runner.training.stage import StageResult, fit_stage
    from mtl_runner.training.state import TrainingState

    run, echo = session.run, session.echo
    position = readable_position(run, point, echo) if point is not None else None
    state = position or TrainingState()
    done: list[StageResult] = []
    if position is not None:
        session.history.keep_until(position.epoch)
        done = [StageResult(**r, last_epoch=0) for r in position.stages]
        if position.stage >= len(stages):  # training was over: the final weights, as saved
            with session.runtime.strategy.scope():
                restore(run, position, session.model)
            echo(f"resuming after training ended (epoch {position.epoch}) from checkpoint "
                 f"{position.checkpoint}: evaluating and saving the trained model")
    for index in range(state.stage, len(stages)):
        done.append(fit_stage(session, index, stages[index], state,
                              resumed=position is not None and index == position.stage))
        run.update(stages=[r.to_dict() for r in done])
    return done, state.epoch


def evaluate_and_save(session, done: list):
    """metrics.csv of every split, the weights' digest, and model.keras (written atomically)."""
    from mtl_runner.training.evaluate import evaluate

    run, model, batch = session.run, session.model, session.recipe.training.batch_size
    # every worker evaluates, not only the chief: under MultiWorkerMirroredStrategy Keras'
    # predict may join collectives, and workers must stay on the same path
    if done[-1].cached_features and "prepared" in session.feature_cache:  # backbone unchanged
        from mtl_runner.models.images import DECODER

        metrics = evaluate(model.get_layer(DECODER), session.feature_cache["prepared"], batch)
    else:
        metrics = evaluate(model, session.prepared, batch)
    run.write_frame("metrics.csv", metrics)
    digest = weights_digest(model)
    run.update(weights_sha256=digest)
    if session.runtime.workers > 1:  # the same on every worker, or they did not train in lockstep
        session.echo(f"final weights sha256 {digest}")
    temporary = run.file(".model.tmp.keras")
    model.save(temporary)
    os.replace(temporary, run.file("model.keras"))
    return metrics


def finish(run: RunDirectory, model, done: list, epochs: int, metrics, echo: Echo) -> None:
    from mtl_runner.training.evaluate import metrics_table

    train_seconds = sum(r.seconds for r in done)
    run.finish("completed", epochs=epochs, best_epoch=done[-1].best_epoch,
               train_seconds=round(train_seconds, 3), parameters=int(model.count_params()),
               feature_cache=any(r.cached_features for r in done))
    echo("")
    echo(metrics_table(metrics))
    echo(f"\nRun {run.run_id} completed in {train_seconds:.1f}s ({epochs} epochs): {run.path}")
