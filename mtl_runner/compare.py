"""Runs side by side: one wide table, mean ± std over seeds, Δm against single-task baselines.

Everything here works on what `mtl_runner.results.reader` read from run directories, with
pandas and numpy only (never TensorFlow).

Δm (Maninis et al., "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; the sign
convention of Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022):

    Δm = 1/T Σ_t 1/M_t Σ_m (−1)^{h_m} (M_{m,t} − B_{m,t}) / B_{m,t} × 100 %

where B is the single-task baseline (the mean over the `baseline:<task>` runs with the same
data) and h_m = 1 when a higher value of metric m is better. So a negative Δm means the
multi-task run beats its baselines; lower is better. The per-task term is kept as well: a task
whose term is positive is flagged as negative transfer.

Example:
    >>> table = compare(runs, split="test")
    >>> table.frame[["label", "n", "species.accuracy", "delta_m"]]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mtl_runner.errors import UsageError, did_you_mean
from mtl_runner.results.reader import Run, format_value
from mtl_runner.tasks.base import HIGHER_IS_BETTER

SEED_KEYS = ("seed",)
DATA_PREFIX = "data."
BASELINE = "baseline:"
NO_GROUPS = ("none", "run")


@dataclasses.dataclass
class Comparison:
    """The result of `compare`.

    Attributes:
        frame: one row per group (or run): `label`, `role`, `n`, `runs`, the group-by keys,
            then for every selected `task.metric` its mean and `task.metric_std`, then
            `delta_m`, `delta_m_std`, `delta.<task>` terms, `negative_transfer`, `pareto`.
        metrics: the selected `task.metric` columns, in order.
        split: the split the metrics come from.
        notes: one-line remarks for the reader (tasks without a baseline, ...).
        per_run: the same columns for each run (before aggregation), index = run id.
    """

    frame: pd.DataFrame
    metrics: list[str]
    split: str
    notes: list[str]
    per_run: pd.DataFrame


def higher_is_better(metric: str) -> bool | None:
    """The direction of a metric, or None when it is not known (e.g. a custom metric)."""
    if metric in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[metric]
    if metric.endswith("loss"):
        return False
    return None


def is_baseline(run: Run) -> bool:
    return run.role.startswith(BASELINE)


# -- metric columns -----------------------------------------------------------------------------


def wide_metrics(runs: Sequence[Run], split: str) -> pd.DataFrame:
    """One row per run (index: run id), one column per `task.metric` on `split`."""
    records: dict[str, dict[str, float]] = {}
    columns: dict[str, None] = {}  # insertion-ordered set
    for run in runs:
        values = records.setdefault(run.id, {})
        for row in run.metrics:
            if row.split == split:
                column = f"{row.task}.{row.metric}"
                values[column] = row.value
                columns[column] = None
    frame = pd.DataFrame.from_dict(records, orient="index", columns=list(columns), dtype=float)
    return frame.reindex([run.id for run in runs])


def select_metrics(available: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """The columns `--metric` asks for: `task.metric`, a task name, or a metric name.

    Raises:
        UsageError: a request matches no column.
    """
    if not wanted:
        return list(available)
    chosen: list[str] = []
    for spec in [w.strip() for item in wanted for w in item.split(",") if w.strip()]:
        hits = [c for c in available
                if c == spec or c.split(".", 1)[0] == spec or c.split(".", 1)[1] == spec]
        if not hits:
            tokens = sorted({*available, *(c.split(".", 1)[0] for c in available),
                             *(c.split(".", 1)[1] for c in available)})
            raise UsageError(f"--metric {spec!r} matches no task or metric."
                             f"{did_you_mean(spec, tokens)} Available: {', '.join(available)}")
        chosen.extend(c for c in hits if c not in chosen)
    return [c for c in available if c in chosen]


# -- Δm -----------------------------------------------------------------------------------------


def data_signature(run: Run, task: str) -> tuple:
    """What a baseline of `task` must share with a run: the data block (source, file, options,
    split — not the feature lists: a baseline leaves the other tasks' labels out of its
    features), and the task's type, label and own data."""
    flat = run.flat_recipe()
    prefixes = (DATA_PREFIX, f"tasks.{task}.data")
    feature_lists = (".exclude", ".features", ".categorical")
    data = tuple(sorted((k, format_value(v)) for k, v in flat.items()
                        if k.startswith(prefixes) and not k.endswith(feature_lists)))
    own = tuple(format_value(flat.get(f"tasks.{task}.{field}")) for field in ("type", "label"))
    return data + own


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def task_delta(values: dict[str, float], baseline: dict[str, float]) -> float:
    """1/M_t Σ_m (−1)^{h_m} (M − B) / B × 100 over the metrics with a known direction."""
    terms = []
    for metric, value in values.items():
        higher = higher_is_better(metric)
        base = baseline.get(metric, math.nan)
        if higher is None or not np.isfinite(value) or not np.isfinite(base) or base == 0:
            continue
        terms.append((-1.0 if higher else 1.0) * (value - base) / abs(base) * 100.0)
    return float(np.mean(terms)) if terms else math.nan


def delta_terms(runs: Sequence[Run], wide: pd.DataFrame, columns: Sequence[str]
                ) -> tuple[pd.DataFrame, list[str]]:
    """Per run, the per-task Δ terms (`delta.<task>`) and their mean `delta_m`.

    Baselines of task t are the `baseline:t` runs with the same data; B is their mean.
    """
    table = wide.to_dict(orient="index")  # plain dicts: this loop runs per run and task
    by_task = {task: [c for c in columns if c.split(".", 1)[0] == task]
               for task in dict.fromkeys(c.split(".", 1)[0] for c in columns)}
    references: dict[tuple, list[str]] = {}
    for run in runs:
        if is_baseline(run):
            task = run.role[len(BASELINE):]
            references.setdefault((task, data_signature(run, task)), []).append(run.id)
    means: dict[tuple, dict[str, float]] = {}
    terms: dict[str, dict[str, float]] = {}
    missing: set[str] = set()
    for run in runs:
        if is_baseline(run):
            continue
        for task, task_columns in by_task.items():
            values = {c.split(".", 1)[1]: table[run.id][c] for c in task_columns}
            if not any(math.isfinite(v) for v in values.values()):
                continue  # this run has no such task
            key = (task, data_signature(run, task))
            if key not in references:
                missing.add(task)
                continue
            if key not in means:
                means[key] = {c.split(".", 1)[1]: _finite_mean([table[i][c]
                                                                 for i in references[key]])
                              for c in task_columns}
            terms.setdefault(f"delta.{task}", {})[run.id] = task_delta(values, means[key])
    out = pd.DataFrame(terms, index=wide.index, dtype=float)
    notes = []
    delta_cols = list(out.columns)
    if missing and delta_cols:
        notes.append(f"no baseline run with the same data for: {', '.join(sorted(missing))}; "
                     f"Δm averages the tasks that have one")
    elif missing:
        notes.append("no Δm: it needs single-task runs (role baseline:<task>) on the same data; "
                     "train them with `mtl train --baselines`")
    out["delta_m"] = out[delta_cols].mean(axis=1, skipna=True) if delta_cols else math.nan
    return out, notes


# -- Pareto front ---------------------------------------------------------------------------


def pareto_front(points: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    """A mask of the rows no other row dominates (at least as good everywhere, better once).

    Rows with a NaN are never on the front.

    Args:
        points: (rows, objectives).
        higher: for each objective, whether a higher value is better.
    """
    points = np.asarray(points, dtype=float)
    if points.size == 0:
        return np.zeros(len(points), dtype=bool)
    signs = np.where(np.asarray(higher, dtype=bool), 1.0, -1.0)
    scores = points * signs  # now higher is better everywhere
    valid = np.all(np.isfinite(scores), axis=1)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = scores[valid]
        dominated = np.any(np.all(others >= scores[i], axis=1) & np.any(others > scores[i], axis=1))
        front[i] = not dominated
    return front


def headline_columns(columns: Sequence[str]) -> list[str]:
    """Per task, the first selected metric whose direction is known (the Pareto objectives)."""
    chosen: dict[str, str] = {}
    for column in columns:
        task, metric = column.split(".", 1)
        if task not in chosen and higher_is_better(metric) is not None:
            chosen[task] = column
    return list(chosen.values())


# -- grouping -------------------------------------------------------------------------------


def group_keys(runs: Sequence[Run], group_by: Sequence[str] | None) -> list[tuple]:
    """The group of each run: by default the whole recipe without its seed, else the given keys.

    The role always takes part, so a baseline never shares a group with a multi-task run.
    """
    if group_by and group_by[0] in NO_GROUPS:
        return [(run.id,) for run in runs]
    if group_by:
        known = set().union(*(run.fields() for run in runs)) if runs else set()
        for key in group_by:
            if key not in known:
                raise UsageError(f"--group-by: no run has the key {key!r}."
                                 f"{did_you_mean(key, sorted(known))}")
        return [(run.role, *(format_value(run.fields().get(k)) for k in group_by)) for run in runs]
    return [(run.role, *sorted((k, format_value(v)) for k, v in run.flat_recipe().items()
                              if k not in SEED_KEYS)) for run in runs]


def varying_keys(runs: Sequence[Run], ignore: Sequence[str] = SEED_KEYS) -> list[str]:
    """The recipe keys whose values are not the same in every run (like `guild diff`)."""
    flats = [run.flat_recipe() for run in runs]
    keys = list(dict.fromkeys(k for flat in flats for k in flat))
    return [k for k in keys if k not in ignore
            and len({format_value(flat.get(k)) for flat in flats}) > 1]


def diff_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run, one column per recipe key that differs between the runs (seed too)."""
    keys = varying_keys(runs, ignore=())
    rows = {run.id: {k: format_value(run.flat_recipe().get(k)) for k in keys} for run in runs}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=keys)
    frame.insert(0, "role", [run.role for run in runs])
    frame.index.name = "run"
    return frame


def _labels(groups: list[list[Run]], group_by: Sequence[str] | None) -> list[str]:
    if group_by and group_by[0] in NO_GROUPS:
        return [g[0].id for g in groups]
    varying = {role: varying_keys([g[0] for g in groups if g[0].role == role])
               for role in {g[0].role for g in groups}} if not group_by else {}
    labels = []
    for group in groups:
        run = group[0]
        if group_by:
            parts = [f"{k}={format_value(run.fields().get(k))}" for k in group_by]
        else:
            flat = run.flat_recipe()
            parts = [f"{k}={format_value(flat.get(k))}" for k in varying[run.role]]
        if is_baseline(run):
            parts.insert(0, run.role)
        labels.append(", ".join(parts) or str(run.recipe.get("name") or run.id))
    return labels


# -- the table ------------------------------------------------------------------------------


def compare(runs: Sequence[Run], split: str = "test", metrics: Sequence[str] = (),
            group_by: Sequence[str] | None = None, references: Sequence[Run] = ()
            ) -> Comparison:
    """Builds the comparison table of `runs` on `split`.

    Args:
        runs: runs to compare, baselines among them (they are rows too, and the references
            of Δm).
        split: `test`, `validation` or `train`.
        metrics: `--metric` requests (`task.metric`, a task, or a metric); default: all.
        group_by: recipe keys to group on; None groups runs that differ only in their seed;
            `["none"]` gives one row per run.
        references: more baseline runs, used for Δm but not shown as rows.

    Returns:
        A Comparison. Groups come in the order of their first run.
    """
    runs = list(runs)
    ids = {run.id for run in runs}
    everything = runs + [r for r in references if r.id not in ids and is_baseline(r)]
    wide = wide_metrics(everything, split)
    shown = wide.loc[[run.id for run in runs]]
    columns = select_metrics([c for c in wide.columns if shown[c].notna().any()], metrics)
    wide = wide[columns]
    deltas, notes = delta_terms(everything, wide, columns)
    per_run = pd.concat([wide, deltas], axis=1).loc[[run.id for run in runs]]
    delta_cols = [c for c in deltas.columns if c.startswith("delta.")]
    has_delta = bool(delta_cols)

    keys = group_keys(runs, group_by)
    order: dict[tuple, list[Run]] = {}
    for run, key in zip(runs, keys):
        order.setdefault(key, []).append(run)
    groups = list(order.values())
    labels = _labels(groups, group_by)

    rows = []
    for label, group in zip(labels, groups):
        ids = [run.id for run in group]
        part = per_run.loc[ids]
        row: dict[str, Any] = {"label": label, "role": group[0].role, "n": len(group),
                               "runs": ids}
        if group_by and group_by[0] not in NO_GROUPS:
            row.update({k: format_value(group[0].fields().get(k)) for k in group_by})
        for column in columns:
            row[column] = part[column].mean()
            row[f"{column}_std"] = part[column].std(ddof=1) if len(group) > 1 else math.nan
        if has_delta:
            row["delta_m"] = part["delta_m"].mean()
            row["delta_m_std"] = part["delta_m"].std(ddof=1) if len(group) > 1 else math.nan
            for column in delta_cols:
                row[column] = part[column].mean()
            # a tolerance: identical means differ by float round-off (1e-15), not by transfer
            row["negative_transfer"] = [c[len("delta."):] for c in delta_cols if row[c] > 1e-9]
        rows.append(row)
    frame = pd.DataFrame(rows)

    objectives = headline_columns(columns)
    frame["pareto"] = False
    candidates = frame.index[frame["role"].map(lambda r: not r.startswith(BASELINE))] \
        if len(frame) else frame.index
    if len(objectives) and len(candidates):
        higher = [bool(higher_is_better(c.split(".", 1)[1])) for c in objectives]
        mask = pareto_front(frame.loc[candidates, objectives].to_numpy(), higher)
        frame.loc[candidates, "pareto"] = mask
    return Comparison(frame, columns, split, notes, per_run)


def sort_frame(comparison: Comparison, column: str, reverse: bool = False) -> pd.DataFrame:
    """Sorts best first for a metric or Δm column, ascending otherwise.

    Raises:
        UsageError: the column is not in the table.
    """
    frame = comparison.frame
    sortable = [c for c in frame.columns if c != "runs" and not c.endswith("_std")]
    if column not in frame.columns:
        aliases = {"delta": "delta_m", "Δm": "delta_m", "dm": "delta_m"}
        column = aliases.get(column, column)
    if column not in frame.columns:
        hits = [c for c in comparison.metrics if c.split(".", 1)[1] == column]
        column = hits[0] if len(hits) == 1 else column
    if column not in frame.columns or column == "runs":
        raise UsageError(f"--sort: no column {column!r}.{did_you_mean(column, sortable)} "
                         f"Columns: {', '.join(sortable)}")
    ascending = True
    if "." in column and column in comparison.metrics:
        ascending = not bool(higher_is_better(column.split(".", 1)[1]))
    if reverse:
        ascending = not ascending
    return frame.sort_values(column, ascending=ascending, na_position="last", kind="stable")
