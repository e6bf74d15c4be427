"""The figures `mtl compare --plot FILE.png` and `mtl show --plot FILE.png` write (matplotlib,
Agg backend, no TensorFlow).

Compare: one panel per task with its validation loss per epoch (mean over the seeds of a group,
only over the epochs every run of the group reached; the band ± one std), then one bar panel
per compared metric and one for Δm (error bars: ± std over seeds; for Δm its 95 % interval).
Bars start at zero, x labels name the groups, colours are the same group in every panel, and
the legend below holds the full labels; the figure's size is bounded.

Show: per task, one panel per unit (loss; scores such as accuracy or R²; errors in the data's
units such as MAE; squared errors), the gradient telemetry when logged, task weights only when
they change, and the restored (best) epoch marked.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from mtl_runner.compare import BASELINE, Comparison
from mtl_runner.results.reader import Run

PANEL_WIDTH, PANEL_HEIGHT, MAX_COLUMNS = 4.2, 3.0, 4
MAX_WIDTH, MAX_HEIGHT = 16.8, 16.0  # inches: 2520 × 2400 px at 150 dpi, whatever the folder
TICK_CHARACTERS, LEGEND_LINES = 22, 40
UNITS = {"loss": "loss", "mae": "error (data units)", "rmse": "error (data units)",
         "mse": "squared error"}  # anything else is a unitless score (accuracy, AUC, F1, R²)
TELEMETRY = ("grad_cosine", "grad_conflict")
GRADIENTS, WEIGHTS = "gradients (shared trunk)", "task weights"  # run_figure panel titles


def read_history(run: Run) -> pd.DataFrame | None:
    """history.csv of a run, or None when it is missing; raises ValueError when garbled."""
    file = run.path / "history.csv"
    if not file.exists():
        return None
    from mtl_runner.results.reader import read_history_file

    frame = read_history_file(file)
    if "epoch" not in frame.columns:
        raise ValueError("history.csv has no 'epoch' column")
    return frame


def curve_column(history: pd.DataFrame, task: str, only_task: bool = False) -> str | None:
    """The column to draw for a task: validation loss, else training loss.

    A single-task run (a baseline) has no task prefix: Keras names its columns `val_loss`.
    """
    names = (f"val_{task}_loss", f"{task}_loss") + (("val_loss", "loss") if only_task else ())
    for column in names:
        if column in history.columns:
            return column
    return None


def mean_curve(histories: Sequence[pd.DataFrame], column: str) -> pd.DataFrame:
    """Mean and std of `column` per epoch over the histories that have it, only at the epochs
    every one of them reached (a run that stopped early does not bend the mean)."""
    parts = []
    for history in histories:
        if column in history.columns:
            values = pd.to_numeric(history[column], errors="coerce")
            parts.append(pd.Series(values.to_numpy(), index=range(1, len(values) + 1)))
    if not parts:
        return pd.DataFrame(columns=["mean", "std"])
    stacked = pd.concat(parts, axis=1).dropna(how="any")
    return pd.DataFrame({"mean": stacked.mean(axis=1), "std": stacked.std(axis=1, ddof=1)})


def short(text: str, width: int = TICK_CHARACTERS, lines: int = 3) -> str:
    """`text` wrapped to `lines` lines of `width` characters, cut with … if longer."""
    if lines == 1:
        return text if len(text) <= width else text[:width - 1] + "…"
    wrapped = textwrap.wrap(text, width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][:width - 1] + "…"
    return "\n".join(wrapped)


def comparison_figure(comparison: Comparison, runs: Sequence[Run],
                      warn: Callable[[str], None] | None = None):
    """The comparison figure (a matplotlib Figure; the caller saves and closes it).

    Args:
        comparison: what `mtl_runner.compare.compare` returned for `runs`.
        runs: the runs behind it (their history.csv gives the learning curves).
        warn: called with one line for each history that cannot be read.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = comparison.frame
    tasks = list(dict.fromkeys(c.split(".", 1)[0] for c in comparison.metrics))
    histories = read_histories(runs, warn)
    bars = list(comparison.metrics) + (["delta_m"] if "delta_m" in frame.columns else [])
    panels = [("curve", t) for t in tasks] + [("bar", c) for c in bars]
    columns = max(1, min(MAX_COLUMNS, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    width = min(MAX_WIDTH, PANEL_WIDTH * columns)
    legend_columns = 1 if len(frame) <= 12 else 2
    legend_lines = min(LEGEND_LINES, math.ceil(len(frame) / legend_columns))
    height = min(MAX_HEIGHT, PANEL_HEIGHT * rows + 0.6 + 0.18 * legend_lines)
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                figsize=(width, height))
    colours = plt.get_cmap("tab10" if len(frame) <= 10 else "tab20")
    tasks_of = {run.id: run.tasks for run in runs}
    for axis, (kind, name) in zip(axes.flat, panels):
        if kind == "curve":
            _draw_curves(axis, name, frame, histories, tasks_of, colours)
        else:
            _draw_bars(axis, name, comparison, colours)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    _draw_legend(figure, frame, colours, int(width * 14 / legend_columns) - 12, legend_columns)
    return figure


def read_histories(runs: Sequence[Run], warn: Callable[[str], None] | None = None
                   ) -> dict[str, pd.DataFrame]:
    """The readable history.csv of each run, by run id; `warn` hears of the garbled ones."""
    histories: dict[str, pd.DataFrame] = {}
    for run in runs:
        try:
            history = read_history(run)
        except ValueError as problem:
            if warn is not None:
                warn(f"no learning curve for {run.path}: {problem}")
            continue
        if history is not None:
            histories[run.id] = history
    return histories


def _draw_curves(axis, task: str, frame: pd.DataFrame, histories: dict[str, pd.DataFrame],
                 tasks_of: dict[str, list[str]], colours) -> None:
    """One task's loss per epoch: per group the mean over its seeds, the band ± one std."""
    from matplotlib.ticker import MaxNLocator

    column_used = None
    for i, (_, row) in enumerate(frame.iterrows()):
        group = [histories[r] for r in row["runs"] if r in histories]
        only = [tasks_of.get(r) == [task] for r in row["runs"] if r in histories]
        column = next((c for h, o in zip(group, only) if (c := curve_column(h, task, o))), None)
        if column is None:
            continue
        column_used = column
        curve = mean_curve(group, column)
        axis.plot(curve.index, curve["mean"], color=colours(i % colours.N), lw=1.5)
        if len(group) > 1:
            axis.fill_between(curve.index, curve["mean"] - curve["std"].fillna(0),
                              curve["mean"] + curve["std"].fillna(0),
                              color=colours(i % colours.N), alpha=0.2, lw=0)
    kind_of_loss = "validation" if (column_used or "").startswith("val_") else "training"
    axis.set_title(f"{task}: {kind_of_loss} loss")
    axis.set_xlabel("epoch (mean over the epochs all seeds reached)", fontsize=7)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)


def _error_bars(frame: pd.DataFrame, column: str, means: np.ndarray) -> np.ndarray:
    """(2, groups) distances below and above each bar: Δm's 95 % interval, else ± std."""
    if column == "delta_m" and "delta_m_ci_low" in frame:
        return np.vstack([means - frame["delta_m_ci_low"].to_numpy(dtype=float),
                          frame["delta_m_ci_high"].to_numpy(dtype=float) - means])
    if f"{column}_std" in frame:
        return frame[f"{column}_std"].to_numpy(dtype=float)[None, :].repeat(2, axis=0)
    return np.full((2, len(frame)), np.nan)


def _draw_bars(axis, column: str, comparison: Comparison, colours) -> None:
    """One bar per group for a metric or Δm; baselines hatched, missing values left out."""
    frame = comparison.frame
    positions = np.arange(len(frame))
    means = frame[column].to_numpy(dtype=float)
    errors = _error_bars(frame, column, means)
    bar_colours = [colours(i % colours.N) for i in range(len(frame))]
    hatches = ["//" if str(role).startswith(BASELINE) else "" for role in frame["role"]]
    drawn = axis.bar(positions, np.nan_to_num(means), color=bar_colours,
                     edgecolor="black", linewidth=0.5)
    for patch, hatch, value in zip(drawn.patches, hatches, means):
        patch.set_hatch(hatch)
        if not np.isfinite(value):
            patch.set_visible(False)
    shown = np.isfinite(means) & np.all(np.isfinite(errors), axis=0)
    if shown.any():
        axis.errorbar(positions[shown], means[shown], yerr=errors[:, shown], fmt="none",
                      ecolor="black", capsize=3, lw=1)
    if column == "delta_m":
        better = "higher" if comparison.convention == "delta_p" else "lower"
        axis.set_title(f"{comparison.delta_title}, {better} is better (95 % CI)")
        axis.axhline(0, color="black", lw=0.8)
    else:
        axis.set_title(f"{column} ({comparison.split})")
    crowded = len(frame) > 4  # rotated one-line labels; a few groups get up to three lines
    ticks = [short(f"{i + 1}. {label}", lines=1 if crowded else 3)
             for i, label in enumerate(frame["label"])]
    axis.set_xticks(positions, ticks, rotation=40 if crowded else 0,
                    ha="right" if crowded else "center", rotation_mode="anchor", fontsize=7)
    finite = means[np.isfinite(means)]
    if not finite.size or finite.min() >= 0:
        axis.set_ylim(bottom=0)  # a bar's length is its value: never cut the axis
    axis.grid(axis="y", alpha=0.3)


def _draw_legend(figure, frame: pd.DataFrame, colours, characters: int, columns: int) -> None:
    """The full group labels below the panels, cut to fit the figure's width and height."""
    import matplotlib.pyplot as plt

    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % colours.N)) for i in range(len(frame))]
    legend = [short(f"{i + 1}. {row['label']} (n={row['n']})"
                    f"{'  *pareto' if row.get('pareto') else ''}", characters, lines=1)
              for i, (_, row) in enumerate(frame.iterrows())]
    if len(legend) > LEGEND_LINES * columns:
        hidden = len(legend) - LEGEND_LINES * columns
        handles = handles[:LEGEND_LINES * columns]
        legend = legend[:LEGEND_LINES * columns]
        legend[-1] = f"... and {hidden + 1} more groups (see the table)"
    figure.legend(handles, legend, loc="outside lower center", ncol=columns,
                  frameon=False, fontsize=8)


def plot_comparison(comparison: Comparison, runs: Sequence[Run], output: str | Path,
                    warn: Callable[[str], None] | None = None) -> Path:
    """Writes `comparison_figure` to `output` (the format follows the suffix: png, pdf, svg)."""
    import matplotlib.pyplot as plt

    figure = comparison_figure(comparison, runs, warn)
    output = Path(output)
    try:
        figure.savefig(output, dpi=150)
    finally:
        plt.close(figure)
    return output


def unit_of(metric: str) -> str:
    return UNITS.get(metric, "score")


def best_epoch_row(history: pd.DataFrame, best_epoch: int | None) -> float | None:
    """The `epoch` value of the restored (best) epoch: run.json's `best_epoch` counts from the
    start of the last stage."""
    if best_epoch is None or not len(history):
        return None
    rows = history
    if "stage" in history.columns:
        rows = history[history["stage"] == history["stage"].iloc[-1]]
    if best_epoch < 1 or best_epoch > len(rows):
        return None
    return float(rows["epoch"].iloc[best_epoch - 1])


def run_figure(history: pd.DataFrame, tasks: Sequence[str], title: str,
               best_epoch: int | None = None):
    """One run's training as a matplotlib Figure (the caller saves and closes it): per task
    one panel per unit (train solid, validation dashed), the gradient telemetry when logged,
    task weights only when they change, a dotted line where each fine-tuning stage begins, and
    the restored (best) epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = run_panels(history, tasks)
    count = max(1, len(panels))
    columns = min(3, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, min(16.0, 3.4 * rows)),
                                squeeze=False)
    starts = stage_starts(history)
    best = best_epoch_row(history, best_epoch)
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        _draw_run_panel(ax, name, lines, history, starts, best)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def column_owners(history: pd.DataFrame, tasks: Sequence[str]) -> dict[str, tuple | None]:
    """Each history column's (task, metric, split), or None for a column of no task."""
    from mtl_runner.recipe.names import task_of_column

    owners = {c: task_of_column(c, tasks) for c in history.columns}
    if len(tasks) != 1:
        return owners
    not_metrics = ("epoch", "stage", "learning_rate", *TELEMETRY)
    for column in history.columns:  # a single-task run: Keras names its columns without the task
        name = column.removeprefix("val_")
        if owners.get(column) is None and name not in not_metrics \
                and not name.startswith("weight_"):
            owners[column] = (tasks[0], name, "validation" if column.startswith("val_")
                              else "train")
    return owners


def run_panels(history: pd.DataFrame, tasks: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """The panels of `run_figure`: title → the (train column, label) pairs drawn in it."""
    panels: dict[str, list[tuple[str, str]]] = {}
    for column, owner in column_owners(history, tasks).items():
        if owner and owner[1] != "weight" and owner[2] == "train":
            task, metric, _ = owner
            panels.setdefault(f"{task}: {unit_of(metric)}", []).append((column, metric))
    telemetry = [c for c in TELEMETRY if c in history.columns]
    if telemetry:
        panels[GRADIENTS] = [(c, c) for c in telemetry]
    weights = [c for c in history.columns if c.startswith("weight_")]
    if any(pd.to_numeric(history[c], errors="coerce").nunique() > 1 for c in weights):
        panels[WEIGHTS] = [(c, c.removeprefix("weight_")) for c in weights]
    return panels


def stage_starts(history: pd.DataFrame) -> list[tuple[Any, str]]:
    """(epoch, stage) where each fine-tuning stage after the first begins."""
    if "stage" not in history.columns:
        return []
    changed = history["stage"].ne(history["stage"].shift())
    return [(e, s) for e, s, c in zip(history["epoch"], history["stage"], changed) if c][1:]


def _draw_run_panel(ax, name: str, lines: list[tuple[str, str]], history: pd.DataFrame,
                    starts: list[tuple[Any, str]], best: float | None) -> None:
    epochs = history["epoch"]
    for i, (column, label) in enumerate(lines):
        colour = f"C{i}"
        ax.plot(epochs, history[column], color=colour, label=label)
        validation = f"val_{column}"
        if validation in history.columns and name != GRADIENTS:
            ax.plot(epochs, history[validation], color=colour, linestyle="--")
    for epoch, stage in starts:
        ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1)
        ax.annotate(stage, (epoch - 0.5, 1.0), xycoords=("data", "axes fraction"),
                    fontsize=7, color="grey", ha="left", va="top")
    if best is not None:
        ax.axvline(best, color="black", linestyle="-.", linewidth=1,
                   label=f"restored (best) epoch {int(best)}")
    ax.set_title(name)
    ax.set_xlabel("epoch")
    split_note = name not in (WEIGHTS, GRADIENTS)
    ax.legend(fontsize=7, title="solid: train, dashed: validation" if split_note else None,
              title_fontsize=6)
    ax.grid(alpha=0.3)


def plot_run(history: pd.DataFrame, tasks: Sequence[str], title: str, output: str | Path,
             best_epoch: int | None = None) -> Path:
    """Writes `run_figure` to `output`.

    Returns:
        The image written.
    """
    import matplotlib.pyplot as plt

    figure = run_figure(history, tasks, title, best_epoch)
    output = Path(output)
    try:
        figure.savefig(output, dpi=110)
    finally:
        plt.close(figure)
    return output
