"""`mtl train`: one recipe in, one complete run directory out.

The run directory is created first and marked `running`; whatever happens next, it ends
`completed`, `failed` (with the reason) or `interrupted`, keeping what was written before.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import yaml

from mtl_runner import __version__
from mtl_runner.errors import MtlError, RunError
from mtl_runner.recipe import LoadedRecipe
from mtl_runner.results import RunDirectory
from mtl_runner.results.run_dir import utc_now
from mtl_runner.tasks.base import HIGHER_IS_BETTER
from mtl_runner.training.device import device_info, import_tensorflow

Echo = Callable[[str], None]


def resolved_recipe_yaml(loaded: LoadedRecipe) -> str:
    """The recipe as it ran: defaults filled in, overrides applied."""
    data = loaded.recipe.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def monitor_mode(monitor: str) -> str:
    """'max' for metrics where higher is better (accuracy, auc, ...), else 'min'."""
    for metric, higher in HIGHER_IS_BETTER.items():
        if monitor == metric or monitor.endswith("_" + metric):
            return "max" if higher else "min"
    return "min"


def versions() -> dict:
    import keras
    import numpy
    import pandas

    tf = import_tensorflow()

    return {"mtl": __version__, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}


def start_run(loaded: LoadedRecipe, results: str | Path, name: str | None,
              command: list[str]) -> RunDirectory:
    """Creates the run directory, writes the resolved recipe and marks the run `running`."""
    recipe = loaded.recipe
    run = RunDirectory.create(results, name or recipe.name)
    run.write_text("recipe.yaml", resolved_recipe_yaml(loaded))
    run.write_json("run.json", {
        "id": run.run_id, "name": name or recipe.name, "recipe_name": recipe.name,
        "status": "running", "error": None, "role": "mtl", "parent": None,
        "started_at": utc_now().isoformat(), "finished_at": None, "duration_s": None,
        "command": command, "recipe_file": str(loaded.path), "overrides": loaded.overrides,
        "seed": recipe.seed, "pid": os.getpid(), "host": socket.gethostname(),
    })
    return run


def train(loaded: LoadedRecipe, results: str | Path, name: str | None = None,
          command: list[str] | None = None, echo: Echo = print) -> RunDirectory:
    """Trains a recipe and writes its run directory.

    Args:
        loaded: a validated recipe (its data checks already run).
        results: the results folder.
        name: the run name (default: the recipe's name).
        command: the command line, recorded in run.json.
        echo: where progress lines go.

    Returns:
        The completed run directory.

    Raises:
        RunError: the run failed; the run directory says why.
    """
    run = start_run(loaded, results, name, command or sys.argv)
    echo(f"Run {run.run_id}: {run.path}")
    try:
        _train(loaded, run, echo)
    except KeyboardInterrupt:
        run.finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise RunError(f"interrupted; what was written so far is in {run.path}") from None
    except MtlError as error:
        run.finish("failed", error.format_message())
        raise
    except Exception as error:  # noqa: BLE001 - any failure must leave the run marked failed
        message = f"{type(error).__name__}: {error}".strip()
        run.finish("failed", message, traceback=traceback.format_exc())
        raise RunError(f"run failed: {message.splitlines()[0][:300]}. "
                       f"Details in {run.file('run.json')}") from None
    return run


def _train(loaded: LoadedRecipe, run: RunDirectory, echo: Echo) -> None:
    import_tensorflow()
    import keras

    from mtl_runner.data.sources import read_source
    from mtl_runner.models.build import build_model
    from mtl_runner.training.compile import compile_for_training
    from mtl_runner.training.callbacks import EpochLine, HistoryWriter, StopOnNaN
    from mtl_runner.training.evaluate import evaluate, metrics_table
    from mtl_runner.training.prepare import make_dataset, prepare

    recipe = loaded.recipe
    run.update(**device_info(), versions=versions())
    keras.utils.set_random_seed(recipe.seed)

    frame = loaded.frame if loaded.frame is not None else read_source(recipe.data, loaded.resolve_path)
    prepared = prepare(frame, recipe)
    run.update(splits=prepared.sizes, features=prepared.spec.to_dict(), label_encoding=prepared.infos)
    echo(f"Data: {len(frame)} rows → train {prepared.sizes['train']}, validation "
         f"{prepared.sizes['validation']}, test {prepared.sizes['test']}; "
         f"{len(prepared.spec.numeric)} numeric and {len(prepared.spec.categorical)} categorical "
         f"features; tasks: {', '.join(prepared.tasks)}")

    model = build_model(recipe, prepared.spec, prepared.tasks, prepared.infos)
    trainer = compile_for_training(model, recipe, prepared.tasks, prepared.infos)

    training = recipe.training
    train_data = make_dataset(prepared, "train", training.batch_size, recipe.seed, shuffle=True)
    validation_data = (make_dataset(prepared, "validation", training.batch_size, recipe.seed, False)
                       if prepared.sizes["validation"] else None)
    stop_on_nan = StopOnNaN()
    stopping = training.early_stopping
    interactive = sys.stdout.isatty()
    callbacks = [HistoryWriter(run), stop_on_nan]
    if not interactive:
        callbacks.append(EpochLine(training.epochs, echo, stopping.monitor if stopping else None))
    if stopping is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=stopping.monitor, patience=stopping.patience, min_delta=stopping.min_delta,
            mode=monitor_mode(stopping.monitor), restore_best_weights=stopping.restore_best_weights,
            verbose=0))
    started = time.perf_counter()
    history = trainer.fit(train_data, validation_data=validation_data, epochs=training.epochs,
                        callbacks=callbacks, shuffle=False,  # the dataset shuffles itself
                        verbose=1 if interactive else 0)
    train_seconds = time.perf_counter() - started
    if stop_on_nan.bad_epoch is not None:
        raise RunError(f"the loss became NaN or Inf at epoch {stop_on_nan.bad_epoch}; lower "
                       f"training.optimizer.learning_rate or set training.optimizer.clipnorm")
    epochs_run = len(history.history.get("loss", []))
    best_epoch = getattr(callbacks[-1], "best_epoch", None) if stopping is not None else None

    metrics = evaluate(model, prepared, training.batch_size)
    run.write_frame("metrics.csv", metrics)
    temporary = run.file(".model.tmp.keras")
    model.save(temporary)
    os.replace(temporary, run.file("model.keras"))
    run.finish("completed", epochs=epochs_run,
               best_epoch=None if best_epoch is None else int(best_epoch) + 1,
               train_seconds=round(train_seconds, 3), parameters=int(model.count_params()))
    echo("")
    echo(metrics_table(metrics))
    echo(f"\nRun {run.run_id} completed in {train_seconds:.1f}s ({epochs_run} epochs): {run.path}")
