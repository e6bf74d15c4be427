"""The figure `mtl compare --plot FILE.png` writes (matplotlib, Agg backend, no TensorFlow).

One figure, one panel per task with its validation loss per epoch (mean over the seeds of a
group, the band ± one std), then one bar panel per compared metric and one for Δm, with
error bars over seeds. Colours are the same group in every panel; the legend is below.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from mtl_runner.compare import BASELINE, Comparison
from mtl_runner.results.reader import Run

PANEL_WIDTH, PANEL_HEIGHT, MAX_COLUMNS = 4.2, 3.0, 4


def read_history(run: Run) -> pd.DataFrame | None:
    """history.csv of a run, or None when it is missing; raises ValueError when garbled."""
    file = run.path / "history.csv"
    if not file.exists():
        return None
    try:
        frame = pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"history.csv cannot be parsed ({str(error).splitlines()[0]})") from None
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
    """Mean and std of `column` per epoch over the histories that have it."""
    parts = []
    for history in histories:
        if column in history.columns:
            values = pd.to_numeric(history[column], errors="coerce")
            parts.append(pd.Series(values.to_numpy(), index=range(1, len(values) + 1)))
    if not parts:
        return pd.DataFrame(columns=["mean", "std"])
    stacked = pd.concat(parts, axis=1)
    return pd.DataFrame({"mean": stacked.mean(axis=1), "std": stacked.std(axis=1, ddof=1)})


def plot_comparison(comparison: Comparison, runs: Sequence[Run], output: str | Path,
                    warn: Callable[[str], None] | None = None) -> Path:
    """Writes the comparison figure to `output` (the format follows the suffix: png, pdf, svg).

    Args:
        comparison: what `mtl_runner.compare.compare` returned for `runs`.
        runs: the runs behind it (their history.csv gives the learning curves).
        output: the image file.
        warn: called with one line for each history that cannot be read.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = comparison.frame
    tasks = list(dict.fromkeys(c.split(".", 1)[0] for c in comparison.metrics))
    tasks_of = {run.id: run.tasks for run in runs}
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

    bars = list(comparison.metrics) + (["delta_m"] if "delta_m" in frame.columns else [])
    panels = [("curve", t) for t in tasks] + [("bar", c) for c in bars]
    columns = max(1, min(MAX_COLUMNS, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                figsize=(PANEL_WIDTH * columns,
                                         PANEL_HEIGHT * rows + 0.25 * len(frame) + 0.3))
    colours = plt.get_cmap("tab10" if len(frame) <= 10 else "tab20")
    positions = np.arange(len(frame))

    for axis, (kind, name) in zip(axes.flat, panels):
        if kind == "curve":
            column_used = None
            for i, (_, row) in enumerate(frame.iterrows()):
                group = [histories[r] for r in row["runs"] if r in histories]
                only = [tasks_of.get(r) == [name] for r in row["runs"] if r in histories]
                column = next((c for h, o in zip(group, only) if (c := curve_column(h, name, o))),
                              None)
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
            axis.set_title(f"{name}: {kind_of_loss} loss")
            axis.set_xlabel("epoch")
            axis.grid(alpha=0.3)
        else:
            means = frame[name].to_numpy(dtype=float)
            std_column = f"{name}_std"
            errors = frame[std_column].to_numpy(dtype=float) if std_column in frame else None
            bar_colours = [colours(i % colours.N) for i in range(len(frame))]
            hatches = ["//" if str(role).startswith(BASELINE) else "" for role in frame["role"]]
            drawn = axis.bar(positions, np.nan_to_num(means), color=bar_colours,
                             edgecolor="black", linewidth=0.5)
            for patch, hatch, value in zip(drawn.patches, hatches, means):
                patch.set_hatch(hatch)
                if not np.isfinite(value):
                    patch.set_visible(False)
            if errors is not None:
                shown = np.isfinite(means) & np.isfinite(errors)
                if shown.any():
                    axis.errorbar(positions[shown], means[shown], yerr=errors[shown], fmt="none",
                                  ecolor="black", capsize=3, lw=1)
            axis.set_title("Δm (%), lower is better" if name == "delta_m"
                           else f"{name} ({comparison.split})")
            axis.set_xticks(positions, [str(i + 1) for i in range(len(frame))])
            if name == "delta_m":
                axis.axhline(0, color="black", lw=0.8)
            finite = means[np.isfinite(means)]
            if name != "delta_m" and finite.size and finite.min() > 0:
                spread = finite.max() - finite.min()
                low = max(0.0, finite.min() - max(spread, 0.05 * finite.max()))
                axis.set_ylim(bottom=low)
            axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)

    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % colours.N)) for i in range(len(frame))]
    legend = [f"{i + 1}. {row['label']} (n={row['n']}){'  *pareto' if row.get('pareto') else ''}"
              for i, (_, row) in enumerate(frame.iterrows())]
    figure.legend(handles, legend, loc="outside lower center", ncol=1, frameon=False, fontsize=8)
    output = Path(output)
    figure.savefig(output, dpi=150)
    plt.close(figure)
    return output


def plot_run(history: pd.DataFrame, tasks: Sequence[str], title: str, output: str | Path) -> Path:
    """One run's training, one panel per task (loss and metrics, train solid, validation
    dashed), a panel of task weights when the strategy logged them, and a dotted line where
    each fine-tuning stage begins.

    Returns:
        The PNG written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = [c for c in history.columns if c.startswith("weight_")]
    panels = list(tasks) + (["task weights"] if weights else [])
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    epochs = history["epoch"]
    starts = []
    if "stage" in history.columns:
        changed = history["stage"].ne(history["stage"].shift())
        starts = [(e, s) for e, s, c in zip(epochs, history["stage"], changed) if c][1:]
    for ax, panel in zip(axes.flat, panels):
        if panel == "task weights":
            for column in weights:
                ax.plot(epochs, history[column], label=column.removeprefix("weight_"))
            ax.set_ylabel("weight")
        else:
            names = [c for c in history.columns if c.startswith(f"{panel}_")]
            for i, column in enumerate(names):
                colour = f"C{i}"
                ax.plot(epochs, history[column], color=colour, label=column.removeprefix(f"{panel}_"))
                if f"val_{column}" in history.columns:
                    ax.plot(epochs, history[f"val_{column}"], color=colour, linestyle="--")
        for epoch, stage in starts:
            ax.axvline(epoch - 0.5, color="grey", linestyle=":", linewidth=1)
            ax.annotate(stage, (epoch - 0.5, 1.0), xycoords=("data", "axes fraction"),
                        fontsize=7, color="grey", ha="left", va="top")
        ax.set_title(panel)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, title="solid: train, dashed: validation" if panel != "task weights" else None,
                  title_fontsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    output = Path(output)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    return output
