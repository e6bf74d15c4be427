"""`mtl runs`, `mtl show RUN`, `mtl compare [RUN ...]`: read run directories, never train.

None of these imports TensorFlow or Keras; pandas and matplotlib are imported inside the
commands that need them, so `mtl --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any, Sequence

import click

from mtl_runner.commands import results_option
from mtl_runner.errors import MtlError, RunError

FORMATS = ("table", "csv", "tsv", "md", "json")
SPLITS = ("test", "validation", "train")

where_option = click.option(
    "--where", "wheres", multiple=True, metavar="KEY=VALUE",
    help="Keep runs whose recipe key (dotted, e.g. weighting.name) or status, role, id equals "
         "VALUE; KEY!=VALUE excludes; * and ? are wildcards. Repeat to combine (AND).")
overwrite_option = click.option("--overwrite", is_flag=True,
                                help="Replace the --output or --plot file if it exists "
                                     "(refused otherwise).")
split_option = click.option("--split", type=click.Choice(SPLITS), default="test",
                            show_default=True, help="Which split's final metrics to show.")


def warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


# -- rendering ----------------------------------------------------------------------------------


def decimals(value: float) -> int:
    """Digits after the point that keep about four significant ones."""
    magnitude = abs(value)
    if not math.isfinite(magnitude) or magnitude >= 1000:
        return 0
    return 1 if magnitude >= 100 else 2 if magnitude >= 10 else 4


def number(value: Any, digits: int | None = None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{decimals(value) if digits is None else digits}f}"


def mean_std(mean: float, std: float | None) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    digits = decimals(mean)
    if std is None or not math.isfinite(std):
        return number(mean, digits)
    return f"{number(mean, digits)} ± {number(std, digits)}"


def render(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    """A table as aligned text (`table`), Markdown (`md`), CSV or TSV."""
    cells = [[str(c) for c in row] for row in rows]
    if fmt in ("csv", "tsv"):
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(cells)
        return buffer.getvalue().rstrip("\n")
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    numeric = [all(_numeric(r[i]) for r in cells) and bool(cells) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return ("| " + " | ".join(parts) + " |") if fmt == "md" else "  ".join(parts).rstrip()

    out = [line(headers)]
    if fmt == "md":
        out.append("|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                                  for w, num in zip(widths, numeric)) + "|")
    else:
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _numeric(text: str) -> bool:
    head = text.split(" ")[0].rstrip("%")
    try:
        float(head)
    except ValueError:
        return text == "-"
    return True


def emit(text: str, output: str | None) -> None:
    """Prints `text`, or writes it atomically to `output`."""
    if output is None:
        click.echo(text)
        return
    from mtl_runner.results.run_dir import atomic_write

    atomic_write(Path(output), text + "\n")
    click.echo(f"Wrote {output}", err=True)


def plain(value: Any) -> Any:
    """A value JSON can hold: NaN → null, numpy scalars → Python numbers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def when(text: str) -> str:
    """ISO UTC → `2026-12-01 13:51` (UTC, to the minute)."""
    try:
        return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return text or "-"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


# -- mtl runs -----------------------------------------------------------------------------------


@click.command("runs")
@results_option
@where_option
@split_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def runs(results: str, wheres: tuple[str, ...], split: str, fmt: str) -> None:
    """List the runs in --results, oldest first: status, timing and each task's main metric.

    A run still marked running whose process is gone from this host is shown as `crashed`.
    """
    from mtl_runner.results.reader import filter_runs, scan_runs

    found = filter_runs(scan_runs(results, warn), wheres)
    if fmt == "json":
        click.echo(json.dumps([plain({
            "id": run.id, "name": run.info.get("name"), "recipe": run.info.get("recipe_name"),
            "role": run.role, "status": run.status, "started_at": run.info.get("started_at"),
            "duration_s": run.info.get("duration_s"), "path": str(run.path),
            "metrics": {f"{m.task}.{m.metric}": m.value for m in run.headline(split)},
        }) for run in found], indent=2))
        return
    if not found:
        if fmt == "table":
            click.echo(f"No runs in {results}" + (" match the --where filters." if wheres else "."))
        return
    headers = ["id", "name", "recipe", "role", "status", "started (UTC)", "duration",
               f"{split} metrics"]
    rows = [[run.id, run.info.get("name", "-"), run.info.get("recipe_name", "-"), run.role,
             run.status, when(run.started_at), duration(run.info.get("duration_s")),
             "  ".join(f"{m.task} {m.metric} {number(m.value)}" for m in run.headline(split))
             or "-"]
            for run in found]
    click.echo(render(headers, rows, fmt))


# -- mtl show -----------------------------------------------------------------------------------


@click.command("show")
@click.argument("run")
@results_option
@click.option("--tail", default=5, show_default=True, type=click.IntRange(min=0),
              help="How many of the last epochs of history to show.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG: loss and metrics per task per epoch, task weights, stages.")
@overwrite_option
def show(run: str, results: str, tail: int, fmt: str, plot_file: str | None,
         overwrite: bool) -> None:
    """Show one RUN (an id, a unique prefix of one, or a path): run.json, the resolved
    recipe, the final metrics and the last epochs of history."""
    from mtl_runner.results.reader import load_one
    from mtl_runner.results.run_dir import check_new_output

    if plot_file is not None:
        check_new_output(plot_file, overwrite, "--plot")
    loaded = load_one(run, results)
    if plot_file is not None:
        _plot_run(loaded, plot_file)
    history, history_problem = _history_tail(loaded.path / "history.csv", tail)
    if history_problem:
        warn(f"{loaded.path}: {history_problem}")
    if fmt == "json":
        click.echo(json.dumps(plain({
            "path": str(loaded.path), "status": loaded.status, "run": loaded.info,
            "recipe": loaded.recipe,
            "metrics": [vars(m) for m in loaded.metrics],
            "history": history.to_dict(orient="records") if history is not None else [],
        }), indent=2, default=str))
        return
    _echo_run_info(loaded)
    click.echo("\nRecipe (resolved):")
    recipe_text = (loaded.path / "recipe.yaml").read_text(encoding="utf-8", errors="replace")
    click.echo("  " + recipe_text.rstrip().replace("\n", "\n  "))
    _echo_final_metrics(loaded.metrics)
    _echo_history(history, tail)


def _plot_run(loaded, plot_file: str) -> None:
    """`mtl show --plot`: the run's history.csv drawn, the restored (best) epoch marked when
    early stopping restored it."""
    from mtl_runner.plots import plot_run
    from mtl_runner.results.reader import read_history_file

    file = loaded.path / "history.csv"
    try:
        history = read_history_file(file)
    except (OSError, ValueError) as error:
        raise RunError(f"cannot plot {loaded.id}: {file}: {error}") from None
    if "epoch" not in history.columns:
        raise RunError(f"cannot plot {loaded.id}: {file}: history.csv has no 'epoch' column")
    best = loaded.info.get("best_epoch")
    restored = (loaded.recipe.get("training") or {}).get("early_stopping") or {}
    marked = isinstance(best, int) and restored.get("restore_best_weights", True)
    written = plot_run(history, loaded.tasks, loaded.id, plot_file, best if marked else None)
    click.echo(f"wrote {written}", err=True)


def _echo_run_info(loaded) -> None:
    """The header of `mtl show`: id, path, status, then every other field of run.json."""
    click.echo(f"Run {loaded.id}  ({loaded.path})")
    status = loaded.status + (" (marked running; its process is gone)"
                              if loaded.status == "crashed" else "")
    click.echo(f"status: {status}")
    for key, value in loaded.info.items():
        if key in ("id", "status"):
            continue
        text = " ".join(value) if key == "command" and isinstance(value, list) else \
            value if isinstance(value, str) else json.dumps(value, default=str)
        text = str(text).replace("\n", " | ")
        click.echo(f"{key}: {text if len(text) <= 110 else text[:107] + '...'}")


def _echo_history(history, tail: int) -> None:
    """The last epochs of history.csv, one column per epoch."""
    if history is not None and len(history):
        click.echo(f"\nHistory (last {len(history)} epochs):")
        columns = [c for c in history.columns if c not in ("epoch",)]
        rows = [[c, *(v if isinstance(v, str) else number(v) for v in history[c])]
                for c in columns]
        click.echo(_indent(render(["epoch", *(str(e) for e in history["epoch"])], rows,
                                  "table")))
    elif tail:
        click.echo("\nHistory: (none)")


def _echo_final_metrics(metrics) -> None:
    """metrics.csv as one row per task and metric, one column per split."""
    click.echo("\nFinal metrics:")
    if not metrics:
        click.echo("  (none: the run wrote no metrics.csv)")
        return
    splits = list(dict.fromkeys(m.split for m in metrics))
    table: dict[tuple[str, str], dict[str, float]] = {}
    for m in metrics:
        table.setdefault((m.task, m.metric), {})[m.split] = m.value
    rows = [[task, metric, *(number(values.get(s)) for s in splits)]
            for (task, metric), values in table.items()]
    click.echo(_indent(render(["task", "metric", *splits], rows, "table")))


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


def _history_tail(file: Path, tail: int):
    if not file.exists() or tail == 0:
        return None, None
    from mtl_runner.results.reader import read_history_file

    try:
        frame = read_history_file(file)
    except ValueError as error:
        return None, str(error)
    if "epoch" not in frame.columns:
        return None, "history.csv has no 'epoch' column"
    return frame.tail(tail), None


# -- mtl compare --------------------------------------------------------------------------------


@click.command("compare")
@click.argument("run_refs", metavar="[RUN]...", nargs=-1)
@results_option
@where_option
@split_option
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="Columns to show: task.metric, a task, or a metric (repeatable or "
                   "comma-separated); Δm then uses these. Default: all columns, and one "
                   "primary metric per task in Δm.")
@click.option("--convention", type=click.Choice(("delta_m", "delta_p")), default="delta_m",
              show_default=True,
              help="delta_m: Δm, lower is better (negative: MTL beats its baselines); delta_p: "
                   "LibMTL's Δp = −Δm, higher is better.")
@click.option("--group-by", "group_by", multiple=True, metavar="KEY",
              help="Group on these recipe keys (repeatable), with mean ± std and n. Default: "
                   "runs that differ only in their seed form one group; `none`: one row per run.")
@click.option("--sort", "sort", default=None, metavar="COLUMN",
              help="Sort by a column (task.metric, a metric, delta_m, label, n): best first "
                   "for metrics and Δm.")
@click.option("--reverse", is_flag=True, help="Reverse the --sort order.")
@click.option("--diff", is_flag=True,
              help="Instead of metrics, list the recipe keys that differ between the runs.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format [default: table, or the --output file's suffix].")
@click.option("--output", "-o", default=None, type=click.Path(dir_okay=False),
              help="Write the table to this file instead of the terminal.")
@click.option("--plot", default=None, type=click.Path(dir_okay=False), metavar="FILE.png",
              help="Also draw learning curves per task and bars of the final metrics "
                   "(error bars over seeds).")
@overwrite_option
def compare(run_refs: tuple[str, ...], results: str, wheres: tuple[str, ...], split: str,
            metrics: tuple[str, ...], group_by: tuple[str, ...], sort: str | None,
            reverse: bool, diff: bool, fmt: str | None, output: str | None,
            plot: str | None, overwrite: bool = False, convention: str = "delta_m") -> None:
    """Compare runs side by side: one row per group of seeds (or per run), one column per
    task × metric on --split, Δm against single-task baselines, negative transfer and the
    Pareto front.

    RUN is an id, a unique prefix of one, or a path; without RUN every completed run in
    --results is compared. Δm (%) = mean over tasks of the mean over metrics of
    ±(M − B)/|B| × 100, signed so that lower is better (negative: the multi-task run beats its
    `baseline:<task>` runs); B is the mean of the baselines trained on the same split (data,
    split seed, fold) as each run, and the metric is one primary metric per task (accuracy,
    binary auc, multilabel macro_f1, regression mae; tasks.<t>.primary_metric) unless
    --metric is given. A group shows Δm's mean ± std and 95 % t-interval; negative transfer
    needs a two-sided paired t-test over seeds with p < 0.05, else "n.s.".
    """
    from mtl_runner import compare as cmp
    from mtl_runner.results.run_dir import check_new_output

    for option, path in (("--output", output), ("--plot", plot)):
        if path is not None:
            check_new_output(path, overwrite, option)
    fmt = fmt or _format_of(output)
    group = [k.strip() for item in group_by for k in item.split(",") if k.strip()] or None
    chosen, pool = _runs_to_compare(run_refs, results, wheres)
    if diff:
        _emit_diff(cmp.diff_table(chosen), fmt, output)
        return
    comparison = cmp.compare(chosen, split=split, metrics=metrics, group_by=group,
                             references=_more_baselines(pool, chosen), convention=convention)
    frame = cmp.sort_frame(comparison, sort, reverse) if sort else comparison.frame
    if not comparison.metrics:
        warn(f"the runs have no metrics on the {split} split")
    _emit_comparison(comparison, frame, group, fmt, output)
    for note in comparison.notes:
        click.echo(f"Note: {note}", err=True)
    for line in comparison.warnings:
        warn(line)
    if plot:
        _plot_comparison(comparison, chosen, plot)


def _format_of(output: str | None) -> str:
    """The format the --output file's suffix names, else `table`."""
    suffix = Path(output).suffix.lstrip(".").lower() if output else ""
    fmt = {"markdown": "md", "txt": "table"}.get(suffix, suffix)
    return fmt if fmt in FORMATS else "table"


def _runs_to_compare(run_refs: tuple[str, ...], results: str, wheres: tuple[str, ...]):
    """The runs to compare (the named ones, else every run in `results`), filtered by
    --where and, unless --where names a status, completed; and the pool of every run in
    `results`, where more baselines may be found.

    Raises:
        MtlError: no run is left to compare.
    """
    from mtl_runner.results.reader import filter_runs, read_named, resolve_run, scan_runs

    if run_refs:
        paths = list(dict.fromkeys(resolve_run(ref, results) for ref in run_refs))
        # a run named on the command line that cannot be read is an error, not a warning
        chosen = sorted((read_named(path) for path in paths),
                        key=lambda run: (run.started_at, run.id))
        pool = scan_runs(results, None) if Path(results).is_dir() else []
    else:
        chosen = pool = scan_runs(results, warn)
    chosen = filter_runs(chosen, wheres)
    if not any(w.replace(" ", "").startswith("status") for w in wheres):
        chosen = _completed(chosen)
    if not chosen:
        where = f" in {results}" if not run_refs else ""
        raise MtlError(f"no runs to compare{where}" + (" match the --where filters" if wheres
                                                         else ""))
    return chosen, pool


def _completed(runs: list) -> list:
    """The completed runs; a warning counts the others."""
    left_out = [run for run in runs if run.status != "completed"]
    if left_out:
        warn(f"{len(left_out)} run(s) not completed left out "
             f"({', '.join(sorted({r.status for r in left_out}))}); "
             f"--where status=... to include them")
    return [run for run in runs if run.status == "completed"]


def _more_baselines(pool: list, chosen: list) -> list:
    """The completed baselines in `pool` not among the `chosen` runs: references for Δm."""
    from mtl_runner.compare import is_baseline

    chosen_ids = {run.id for run in chosen}
    return [run for run in pool if is_baseline(run) and run.id not in chosen_ids
            and run.status == "completed"]


def _emit_comparison(comparison, frame, group: list[str] | None, fmt: str,
                     output: str | None) -> None:
    if fmt == "json":
        emit(json.dumps(plain(frame.to_dict(orient="records")), indent=2), output)
    elif fmt in ("csv", "tsv"):
        emit(_separated(frame, fmt), output)
    else:
        emit(_table(comparison, frame, group, fmt), output)


def _emit_diff(frame, fmt: str, output: str | None) -> None:
    """`mtl compare --diff`: the recipe keys that differ between the runs."""
    if fmt == "json":
        emit(json.dumps(plain(frame.reset_index().to_dict(orient="records")), indent=2), output)
    elif frame.shape[1] <= 1:
        emit("The runs share every recipe key.", output)
    else:
        rows = [[index, *row] for index, row in zip(frame.index, frame.to_numpy().tolist())]
        emit(render(["run", *frame.columns], rows, fmt), output)


def _separated(frame, fmt: str) -> str:
    """The comparison frame as CSV or TSV, its list cells joined with ';'."""
    flat = frame.copy()
    for column in ("runs", "negative_transfer", "not_significant"):
        if column in flat:
            flat[column] = flat[column].map(lambda v: ";".join(v) if isinstance(v, list) else "")
    text = flat.to_csv(index=False, sep="," if fmt == "csv" else "\t",
                       float_format="%.6g", lineterminator="\n")
    return text.rstrip("\n")


def _plot_comparison(comparison, chosen, plot: str) -> None:
    from mtl_runner.plots import plot_comparison

    try:
        plot_comparison(comparison, chosen, plot, warn)
    except OSError as error:
        raise MtlError(f"cannot write the plot {plot}: {error.strerror or error}") from None
    click.echo(f"Wrote {plot}", err=True)


def _table(comparison, frame, group: list[str] | None, fmt: str) -> str:
    has_delta = "delta_m" in frame.columns
    per_run = bool(group) and group[0] in ("none", "run")
    headers = ["#", "run" if per_run else "group", "n", *comparison.metrics]
    if has_delta:
        headers += [comparison.delta_title, "95 % CI", "neg. transfer"]
    headers.append("pareto")
    rows = []
    for i, (_, row) in enumerate(frame.iterrows(), start=1):
        cells = [i, row["label"], row["n"]]
        cells += [mean_std(row[c], row.get(f"{c}_std")) for c in comparison.metrics]
        if has_delta:
            cells += _delta_cells(row)
        cells.append("*" if row["pareto"] else "")
        rows.append(cells)
    text = render(headers, rows, fmt)
    if fmt == "md":
        return text
    title = f"{comparison.split} split; mean ± std over seeds (n runs)"
    if has_delta:
        used = ", ".join(f"{task} {'+'.join(ms)}" for task, ms in comparison.delta_metrics.items())
        sign = "higher" if comparison.convention == "delta_p" else "lower"
        title += (f"; {comparison.delta_title} vs baselines of the same split ({used}), "
                  f"{sign} is better; neg. transfer: paired t-test over seeds, p < 0.05")
    return f"{title}\n{text}"


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _delta_cells(row) -> list[str]:
    """Δm ± std, its 95 % interval, and the negative-transfer verdict of one table row."""
    delta, std = row.get("delta_m"), row.get("delta_m_std")
    if not _finite(delta):
        return ["-", "-", "-"]
    cells = [f"{delta:+.2f}" + (f" ± {std:.2f}" if _finite(std) else "")]
    if row.get("delta_n", row["n"]) < row["n"]:  # runs without a baseline on their split
        cells[0] += f" ({row['delta_n']} of {row['n']} runs)"
    low, high = row.get("delta_m_ci_low"), row.get("delta_m_ci_high")
    cells.append(f"[{low:+.2f}, {high:+.2f}]" if _finite(low) and _finite(high) else "-")
    cells.append(_transfer_verdict(row))
    return cells


def _transfer_verdict(row) -> str:
    """The tasks worse than their baselines: with p when significant, else n.s. or untested."""
    worse = [f"{t} (p={row.get(f'delta.{t}_p', math.nan):.2g})"
             for t in row.get("negative_transfer") or []]
    unsure = row.get("not_significant") or []
    tested = [t for t in unsure if _finite(row.get(f"delta.{t}_p"))]
    if tested:
        worse.append(f"{', '.join(tested)} n.s.")
    if len(tested) < len(unsure):  # one run: no test, no verdict
        worse.append(f"{', '.join(t for t in unsure if t not in tested)} untested (n=1)")
    return "; ".join(worse) or "-"


__all__ = ["compare", "runs", "show"]
