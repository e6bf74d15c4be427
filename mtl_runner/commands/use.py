"""`mtl evaluate`, `mtl predict`, `mtl export`: put a trained run to work.

A run is opened from its folder alone (see `mtl_runner.inference`); TensorFlow is imported
inside the commands, so `mtl --help` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from mtl_runner.commands import results_option
from mtl_runner.errors import RunError, UsageError

data_option = click.option("--data", "data", required=True, type=click.Path(),
                           help="New rows: a .csv, .parquet or .npz file (or a folder of class "
                                "subfolders of images, for an image run).")
batch_option = click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
                            help="Rows per prediction batch.")
overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace outputs that exist already (refused otherwise).")


def _table(metrics, split: str) -> str:
    """Like the table `mtl train` prints: task × metric rows, the data as the column."""
    if metrics.empty:
        return "(no metrics: no labelled rows)"
    wide = metrics.set_index(["task", "metric"])[["value", "n"]].rename(columns={"value": split})
    return wide.to_string(float_format=lambda v: f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}")


@click.command()
@click.argument("run")
@data_option
@click.option("--name", default=None, help="Name of this evaluation (the split column of the "
              "table; default: the data file's name without suffix).")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Also write the metrics to FILE (.csv, .json or .md).")
@click.option("--save/--no-save", default=True, show_default=True,
              help="Write the metrics into the run folder as evaluations/NAME.csv.")
@overwrite_option
@batch_option
@results_option
def evaluate(run: str, data: str, name: str | None, output: str | None, save: bool,
             overwrite: bool, batch_size: int, results: str) -> None:
    """Score RUN's model on new labelled DATA, encoded with the run's own encodings.

    RUN is an id, a unique prefix of one, or a path. Every task whose label column(s) the data
    holds is scored, with the metrics of training (rows missing a task's label are left out of
    that task). The table has the same form as `mtl train`'s; the tidy rows (task, metric,
    split, value, n) go to RUN/evaluations/NAME.csv and, with --output, to a file. An
    evaluation of the same NAME or an existing --output file is replaced only with --overwrite.

    \b
    mtl evaluate 20261201-135027-quickstart-4d18 --data penguins_2010.csv
    """
    from mtl_runner.inference import TRAINING_SPLITS, load_trained, read_table
    from mtl_runner.results.run_dir import check_name, check_new_output

    what = "--name" if name else f"the evaluation name (the --data file's name, {Path(data).name!r}; give --name)"
    name = check_name(name or Path(data).stem, what)
    if name in TRAINING_SPLITS:
        raise UsageError(f"{what} may not be a training split ({', '.join(TRAINING_SPLITS)}). "
                         f"Received: {name!r}")
    if output:
        check_new_output(output, overwrite)
    trained = load_trained(run, results)
    frame = read_table(data, trained)
    started = time.perf_counter()
    metrics = trained.score(frame, name, batch_size)
    if save:  # after the data checks: a bad file says what is wrong with it first
        _check_new_evaluation(trained.run, name, overwrite)
    click.echo(_table(metrics, name))
    for task, reason in trained.unscored(frame, metrics).items():
        click.echo(f"Not scored: {task} ({reason})", err=True)
    if save:
        _save_evaluation(trained.run, name, metrics, data, len(frame))
    if output:
        _write_metrics(metrics, name, Path(output))
    click.echo(f"Evaluated {len(frame)} rows in {time.perf_counter() - started:.1f}s", err=True)


def _save_evaluation(run, name: str, metrics, data: str, rows: int) -> None:
    """Writes RUN/evaluations/NAME.csv and records it in run.json (replacing one of the same
    name)."""
    from mtl_runner.results.run_dir import atomic_write, utc_now

    folder = run.file("evaluations")
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot write the evaluation into {folder}: {error.strerror}; "
                       f"use --no-save (with -o FILE) to keep the run folder as it is") from None
    atomic_write(folder / f"{name}.csv", metrics.to_csv(index=False))
    record = {"name": name, "data": str(Path(data).resolve()), "rows": rows,
              "at": utc_now().isoformat(), "file": f"evaluations/{name}.csv"}
    earlier = [e for e in run.read_json().get("evaluations", []) if e.get("name") != name]
    run.update(evaluations=[*earlier, record])
    click.echo(f"Wrote {folder / (name + '.csv')}", err=True)


def _write_metrics(metrics, name: str, output: Path) -> None:
    """`--output FILE`: the metrics as JSON, Markdown or CSV, by the file's suffix."""
    from mtl_runner.results.run_dir import atomic_write

    suffix = output.suffix.lower()
    if suffix == ".json":
        text = json.dumps(metrics.to_dict(orient="records"), indent=2)
    elif suffix in (".md", ".markdown"):
        text = metrics.to_markdown(index=False) if _has_tabulate() else _table(metrics, name)
    else:
        text = metrics.to_csv(index=False)
    atomic_write(output, text if text.endswith("\n") else text + "\n")
    click.echo(f"Wrote {output}", err=True)


def _check_new_evaluation(run, name: str, overwrite: bool) -> None:
    """Refuses to replace an earlier evaluation of the same name without --overwrite."""
    earlier = [e for e in run.read_json().get("evaluations", []) if e.get("name") == name]
    if (earlier or run.file("evaluations").joinpath(f"{name}.csv").exists()) and not overwrite:
        when = f" (of {earlier[0].get('data')}, at {earlier[0].get('at')})" if earlier else ""
        raise UsageError(f"run {run.run_id} already has an evaluation named {name!r}{when}; "
                         f"nothing was written. Give another --name, or add --overwrite to "
                         f"replace it")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


@click.command()
@click.argument("run")
@data_option
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Write predictions to FILE.csv or FILE.parquet [default: CSV on stdout].")
@click.option("--probabilities", type=click.Choice(["top", "all"]), default="top",
              show_default=True, help="top: the predicted class and its probability; all: also "
              "one probability column per class.")
@click.option("--keep", "keep", multiple=True, metavar="COLUMN",
              help="Copy a column of the data into the output first (an id; repeatable).")
@overwrite_option
@batch_option
@results_option
def predict(run: str, data: str, output: str | None, probabilities: str,
            keep: tuple[str, ...], overwrite: bool, batch_size: int, results: str) -> None:
    """Predict every task of RUN for the rows of DATA, in the labels' own terms.

    \b
    Columns per task:
      classification, binary   TASK (the class), TASK_probability (of that class),
                               TASK_p_CLASS with --probabilities all
      multilabel               TASK (labels joined by |), TASK_p_LABEL
      regression               TASK, or TASK_COLUMN for several columns, in original units

    \b
    mtl predict 20261201-135027-quickstart-4d18 --data new.csv -o predictions.parquet
    """
    import pandas as pd

    from mtl_runner.inference import load_trained, read_table
    from mtl_runner.results.run_dir import atomic_write, check_new_output

    if output and Path(output).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise UsageError(f"--output must end in .csv or .parquet. Received: {output}")
    if output:
        check_new_output(output, overwrite)
    trained = load_trained(run, results)
    frame = read_table(data, trained)
    absent = [c for c in keep if c not in frame.columns]
    if absent:
        raise UsageError(f"--keep: the data has no column {', '.join(map(repr, absent))}")
    started = time.perf_counter()
    predictions = trained.predict(frame, probabilities, batch_size)
    if keep:
        predictions = pd.concat([frame[list(keep)], predictions], axis=1)
    seconds = time.perf_counter() - started
    if output is None:
        click.echo(predictions.to_csv(index=False), nl=False)
        return
    if Path(output).suffix.lower() == ".csv":
        atomic_write(Path(output), predictions.to_csv(index=False))
    else:
        import io

        buffer = io.BytesIO()
        predictions.to_parquet(buffer, index=False)
        atomic_write(Path(output), buffer.getvalue())
    click.echo(f"Wrote {len(predictions)} predictions ({', '.join(predictions.columns)}) to "
               f"{output} in {seconds:.1f}s", err=True)


@click.command()
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["savedmodel", "keras"]), default="savedmodel",
              show_default=True, help="savedmodel: for TF Serving / TFLite converters; keras: a "
              "standalone .keras file.")
@click.option("--output", "-o", default=None, type=click.Path(),
              help="Where to write [default: RUN/export/savedmodel/1, or RUN/export/model.keras].")
@overwrite_option
@results_option
def export(run: str, fmt: str, output: str | None, overwrite: bool, results: str) -> None:
    """Export RUN's model with one named input per feature column and one output per task.

    The SavedModel's `serving_default` signature takes the raw columns (numbers, and strings
    for categorical ones; preprocessing is inside the model) and returns the task outputs by
    task name: class probabilities, and regression values in standard units (multiply by
    `scale`, add `mean`). How to decode them is written to assets.extra/mtl.json in the
    SavedModel (TF Serving ignores that folder), or to NAME.mtl.json beside a .keras file.
    An earlier export there is replaced only with --overwrite.

    \b
    mtl export 20261201-135027-quickstart-4d18
    tensorflow_model_server --model_base_path=$PWD/results/<run>/export/savedmodel ...
    """
    from mtl_runner.inference import export_model, export_paths, load_trained
    from mtl_runner.results.run_dir import check_new_output

    if output and fmt == "keras" and Path(output).suffix != ".keras":
        raise UsageError(f"a Keras export is a file ending in .keras. Received: {output}")
    trained = load_trained(run, results)
    default = "export/savedmodel/1" if fmt == "savedmodel" else "export/model.keras"
    target = Path(output) if output else trained.run.file(default)
    for path in export_paths(target, fmt):  # before the model is loaded
        check_new_output(path, overwrite, "--output" if output else "the export",
                         folder=fmt == "savedmodel" and path == target, make_parents=True)
    started = time.perf_counter()
    written = export_model(trained, target, fmt, overwrite)
    click.echo(f"Exported {trained.run.run_id} as {fmt} to {written} "
               f"in {time.perf_counter() - started:.1f}s")
