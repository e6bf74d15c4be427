"""Runs side by side: one wide table, mean ± std over seeds, Δm against single-task baselines.

Everything here works on what `mtl_runner.results.reader` read from run directories, with
pandas and numpy only (never TensorFlow; Student's t is computed here, not imported).

Δm (Maninis et al., "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; the sign
convention of Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022), as
implemented, for one multi-task run:

    Δm = 1/T Σ_t 1/M_t Σ_m (−1)^{h_m} (M_{m,t} − B_{m,t}) / |B_{m,t}| × 100 %

- B is paired: the mean over the `baseline:<task>` runs trained on the same split as this run
  (same data block, same split seed — the recipe's seed unless `data.split.seed` fixes it —
  and fold). Baselines of other splits are never pooled in: each seed draws its own split.
- m runs over one primary metric per task by default (its type's `primary_metric`, or the task's
  `primary_metric` in the recipe), or over the `--metric` selection.
- h_m = 1 when a higher value of m is better, so a negative Δm means the multi-task run beats
  its baselines (lower is better). `convention="delta_p"` gives LibMTL's Δp = −Δm (higher is
  better).

A group (the seeds of one configuration) shows the mean Δm, its std and a 95 % Student-t
interval over its runs. A task is flagged as negative transfer only when its mean term is
worse than the baseline and a two-sided paired t-test over the group's runs (a one-sample t-test
of the per-run terms, i.e. of the paired relative differences, against 0) gives p < `ALPHA`;
a worse but non-significant task is listed as "n.s.", and one run alone is never tested.

Example:
    >>> table = compare(runs, split="test")
    >>> table.frame[["label", "n", "species.accuracy", "delta_m", "delta_m_ci_low"]]
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from mtl_runner.errors import UsageError, did_you_mean
from mtl_runner.results.reader import Run, format_value
from mtl_runner.tasks import TASK_TYPES
from mtl_runner.tasks.base import HIGHER_IS_BETTER

SEED_KEYS = ("seed",)
DATA_PREFIX = "data."
BASELINE = "baseline:"
NO_GROUPS = ("none", "run")
CONVENTIONS = ("delta_m", "delta_p")
ALPHA = 0.05  # two-sided paired t-test over seeds
CONFIDENCE = 0.95  # the Student-t interval of Δm over a group's runs
FEW_RUNS = 3  # a group with fewer runs gets a warning where an interval is shown
FEW_ROWS = 20  # a task with fewer labelled rows on the split gets a warning
MAX_LABEL = 120  # characters of a group label
TOLERANCE = 1e-9  # identical means differ by float round-off (1e-15), not by transfer


@dataclasses.dataclass
class Comparison:
    """The result of `compare`.

    Attributes:
        frame: one row per group (or run): `label`, `role`, `n`, `runs`, the group-by keys,
            then for every selected `task.metric` its mean and `task.metric_std`, then
            `delta_m`, `delta_m_std`, `delta.<task>` terms, `negative_transfer`, `pareto`.
        metrics: the selected `task.metric` columns, in order.
        split: the split the metrics come from.
            With baselines: `delta_m` (mean over the group's runs; Δp with
            `convention="delta_p"`), `delta_m_std`, `delta_m_ci_low`/`_high` (95 % t-interval),
            `delta_m_p`, `delta_n` (runs with a paired Δm), per task `delta.<task>` and
            `delta.<task>_p`, `negative_transfer` (tasks worse than their baselines with
            p < ALPHA) and `not_significant` (worse, but not significantly or from one run).
        notes: one-line remarks for the reader (tasks without a baseline, ...).
        per_run: the same columns for each run (before aggregation), index = run id.
        warnings: one counted line per kind of weak statistic (few runs, few test rows).
        convention: `delta_m` (lower is better) or `delta_p` (LibMTL's, higher is better).
        delta_metrics: per task, the metrics that entered Δm.
    """

    frame: pd.DataFrame
    metrics: list[str]
    split: str
    notes: list[str]
    per_run: pd.DataFrame
    warnings: list[str] = dataclasses.field(default_factory=list)
    convention: str = "delta_m"
    delta_metrics: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def delta_title(self) -> str:
        return "Δp %" if self.convention == "delta_p" else "Δm %"


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
        hits = [c for c in available if spec in (c, *c.split(".", 1))]
        if not hits:
            tokens = sorted({*available, *(part for c in available for part in c.split(".", 1))})
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


def split_signature(run: Run, task: str) -> tuple:
    """The split a run drew for `task`: its data, split seed (the recipe's seed unless
    `data.split.seed` fixes it) and fold. Runs with the same signature saw the same rows."""
    flat = run.flat_recipe()
    blocks = [DATA_PREFIX] + ([f"tasks.{task}.data."] if any(
        k.startswith(f"tasks.{task}.data.") for k in flat) else [])
    seeds = tuple(format_value(run.seed if flat.get(f"{block}split.seed") is None
                               else flat.get(f"{block}split.seed")) for block in blocks)
    fold = flat.get("data.split.fold", run.info.get("fold"))
    return data_signature(run, task) + (("split_seed", seeds), ("fold", format_value(fold)))


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def task_delta(values: dict[str, float], baseline: dict[str, float]) -> float:
    """1/M_t Σ_m (−1)^{h_m} (M − B) / |B| × 100 over the metrics with a known direction."""
    terms = []
    for metric, value in values.items():
        higher = higher_is_better(metric)
        base = baseline.get(metric, math.nan)
        if higher is None or not np.isfinite(value) or not np.isfinite(base) or base == 0:
            continue
        terms.append((-1.0 if higher else 1.0) * (value - base) / abs(base) * 100.0)
    return float(np.mean(terms)) if terms else math.nan


def primary_metric(run: Run, task: str) -> str | None:
    """The metric of `task` that enters Δm by default: the recipe's `primary_metric`, else the
    one of its type (`TaskType.primary_metric`: a relative change of a metric near zero, R² ≈ 0
    on a hard regression, would otherwise dominate the mean)."""
    flat = run.flat_recipe()
    chosen = flat.get(f"tasks.{task}.primary_metric")
    if isinstance(chosen, str):
        return chosen
    kind = flat.get(f"tasks.{task}.type")
    return TASK_TYPES.get(kind).primary_metric if kind in TASK_TYPES.names() else None


def delta_metrics_of(run: Run, task: str, available: Sequence[str], selected: Sequence[str] | None
                     ) -> list[str]:
    """The metrics of `task` that enter this run's Δm: the `--metric` selection when given,
    else the primary metric, else (not in metrics.csv) the first one with a known direction."""
    own = [c.split(".", 1)[1] for c in available if c.split(".", 1)[0] == task]
    if selected is not None:
        return [c.split(".", 1)[1] for c in selected if c.split(".", 1)[0] == task]
    primary = primary_metric(run, task)
    if primary in own:
        return [primary]
    return [m for m in own if higher_is_better(m) is not None][:1]


@dataclasses.dataclass
class _Pairing:
    """The baselines of each split, and what went wrong pairing runs with them (the notes)."""

    on_split: dict[tuple, list[str]]  # (task, split_signature) → ids of its baseline runs
    same_data: set[tuple]  # (task, data_signature) of every baseline
    missing: set[str] = dataclasses.field(default_factory=set)  # tasks: no baseline, same data
    unpaired: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # task → run ids
    incomplete: set[str] = dataclasses.field(default_factory=set)  # runs left without Δm
    incomparable: set[str] = dataclasses.field(default_factory=set)  # tasks: no usable B

    @classmethod
    def of(cls, runs: Sequence[Run]) -> "_Pairing":
        """Indexes the baselines among `runs` by task and split, and by task and data."""
        on_split: dict[tuple, list[str]] = {}
        same_data: set[tuple] = set()
        for run in runs:
            if is_baseline(run):
                task = run.role[len(BASELINE):]
                on_split.setdefault((task, split_signature(run, task)), []).append(run.id)
                same_data.add((task, data_signature(run, task)))
        return cls(on_split, same_data)

    def key(self, run: Run, task: str, values: dict[str, float]) -> tuple | None:
        """The (task, split signature) of the baselines `run` pairs with on `task`; None, and
        the reason recorded, when it has no such task or no baseline of its data or split."""
        if not any(math.isfinite(v) for v in values.values()):
            return None  # this run has no such task
        if (task, data_signature(run, task)) not in self.same_data:
            self.missing.add(task)
            return None
        key = (task, split_signature(run, task))
        if key not in self.on_split:
            self.unpaired.setdefault(task, []).append(run.id)
            self.incomplete.add(run.id)
            return None
        return key

    def notes(self, has_terms: bool) -> list[str]:
        """One line per kind of run or task left out of Δm, and what to train to fix it."""
        notes = []
        if self.missing and has_terms:
            notes.append(f"no baseline run with the same data for: "
                         f"{', '.join(sorted(self.missing))}; Δm averages the tasks that have one")
        elif self.missing and not self.unpaired:
            notes.append("no Δm: it needs single-task runs (role baseline:<task>) on the same "
                         "data; train them with `mtl train --baselines`")
        if self.unpaired:
            which = ", ".join(f"{t} in {len(ids)} run(s)"
                              for t, ids in sorted(self.unpaired.items()))
            notes.append(f"no baseline on the same split (data, split seed, fold) for {which}"
                         f": {len(self.incomplete)} run(s) left without Δm (baselines of other "
                         f"splits are not pooled); train them with "
                         f"`mtl train RECIPE --seeds N --baselines`")
        if self.incomparable:
            notes.append(f"no comparable baseline value (zero, missing or NaN) for "
                         f"{', '.join(sorted(self.incomparable))} in some runs: those runs have "
                         f"no Δm")
        return notes


def _baseline_means(table: dict[str, dict[str, float]], ids: Sequence[str], task: str,
                    available: Sequence[str]) -> dict[str, float]:
    """B: per metric of `task`, the mean over the baseline runs `ids` (NaNs left out)."""
    return {c.split(".", 1)[1]: _finite_mean([table[i][c] for i in ids])
            for c in available if c.split(".", 1)[0] == task}


def delta_terms(runs: Sequence[Run], wide: pd.DataFrame, columns: Sequence[str],
                selected: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str],
                                                               dict[str, list[str]]]:
    """Per run, the per-task Δ terms (`delta.<task>`) and their mean `delta_m`.

    The baseline B of task t for a run is the mean over the `baseline:t` runs on the same
    split (`split_signature`). A task with baselines on other splits only gets no term for that
    run, and the run no Δm: pooling baselines of other splits would compare different test rows.

    Args:
        runs: every run, baselines included.
        wide: `wide_metrics` of the runs (all columns).
        columns: the `task.metric` columns of the table (their tasks are the tasks of Δm).
        selected: the `--metric` selection, or None for one primary metric per task.

    Returns:
        The per-run frame, notes, and per task the metrics that entered Δm.
    """
    table = wide.to_dict(orient="index")  # plain dicts: this loop runs per run and task
    available = list(wide.columns)
    tasks = list(dict.fromkeys(c.split(".", 1)[0] for c in columns))
    pairing = _Pairing.of(runs)
    means: dict[tuple, dict[str, float]] = {}
    terms: dict[str, dict[str, float]] = {}
    used: dict[str, list[str]] = {}
    for run in runs:
        if is_baseline(run):
            continue
        for task in tasks:
            metrics = delta_metrics_of(run, task, available, selected)
            values = {m: table[run.id].get(f"{task}.{m}", math.nan) for m in metrics}
            key = pairing.key(run, task, values)
            if key is None:
                continue
            if key not in means:
                means[key] = _baseline_means(table, pairing.on_split[key], task, available)
            entered = used.setdefault(task, [])
            entered.extend(m for m in metrics if m not in entered)
            term = task_delta(values, means[key])
            terms.setdefault(f"delta.{task}", {})[run.id] = term
            if not math.isfinite(term):  # e.g. the baseline did not compute that metric
                pairing.incomparable.add(task)
                pairing.incomplete.add(run.id)
    out = pd.DataFrame(terms, index=wide.index, dtype=float)
    delta_cols = list(out.columns)
    out["delta_m"] = math.nan
    if delta_cols:
        delta = out[delta_cols].mean(axis=1, skipna=True)
        delta[[i in pairing.incomplete for i in out.index]] = math.nan
        out["delta_m"] = delta
    return out, pairing.notes(bool(delta_cols)), used


# -- Student's t, in pure Python: importing scipy.stats would cost `mtl compare` seconds --------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| ≥ |t|) for Student's t with `df` degrees of freedom."""
    return regularized_beta(df / 2.0, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=256)  # groups of a table mostly share their n
def t_quantile(probability: float, df: int) -> float:
    """The t with P(T ≤ t) = `probability` (> 0.5), by bisection on the two-sided tail."""
    tail, low, high = 2.0 * (1.0 - probability), 0.0, 1e8
    for _ in range(200):
        middle = (low + high) / 2.0
        low, high = (middle, high) if t_two_sided_p(middle, df) > tail else (low, middle)
    return (low + high) / 2.0


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE
               ) -> tuple[float, float, float, float]:
    """Mean, std (ddof 1), and the Student-t interval of the mean of the finite `values`
    (NaN where fewer than two)."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(finite.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, finite.size - 1) * std / math.sqrt(finite.size)
    return mean, std, mean - half, mean + half


def paired_p_value(values: Sequence[float]) -> float:
    """Two-sided p of a paired t-test over runs: the per-run paired terms against 0.

    NaN for fewer than two runs; 0 when every run differs by the same non-zero amount.
    """
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if finite.size < 2:
        return math.nan
    if np.allclose(finite, finite[0], rtol=0, atol=TOLERANCE):
        return 0.0 if abs(finite[0]) > TOLERANCE else 1.0
    t = float(finite.mean() / (finite.std(ddof=1) / math.sqrt(finite.size)))
    return t_two_sided_p(t, finite.size - 1)


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


def recipe_name(run: Run) -> str:
    return str(run.info.get("recipe_name") or run.recipe.get("name") or "")


def user_keys(run: Run) -> set[str]:
    """The recipe keys the user set on the command line (`--set`, recorded in run.json)."""
    keys = set()
    for item in run.info.get("overrides") or []:
        key = str(item).partition("=")[0].strip()
        if key:
            keys.add(key)
    return keys


def label_keys(firsts: Sequence[Run], everyone: Sequence[Run]) -> list[str]:
    """The keys that name the groups of one recipe (one run of each group in `firsts`): the
    varying keys the user set (`--set`), else those without derived `null` defaults, else all
    varying keys — the first of these that tells the groups apart."""
    varying = varying_keys(firsts)
    set_keys = set().union(*(user_keys(run) for run in everyone)) if everyone else set()
    by_user = [k for k in varying if any(k == s or k.startswith(f"{s}.") for s in set_keys)]
    flats = [run.flat_recipe() for run in firsts]
    no_nulls = [k for k in varying if all(flat.get(k) is not None for flat in flats)]
    return next((keys for keys in (by_user, no_nulls) if _tells_apart(keys, flats)), varying)


def _tells_apart(keys: Sequence[str], flats: Sequence[dict[str, Any]]) -> bool:
    """Whether the values of `keys` differ between every two of the flat recipes."""
    values = {tuple(format_value(flat.get(k)) for k in keys) for flat in flats}
    return bool(keys) and len(values) == len(flats)


def _labels(groups: list[list[Run]], group_by: Sequence[str] | None) -> list[str]:
    """The label of each group: its `--group-by` values, else the recipe keys that tell the
    groups of its recipe apart (`label_keys`), prefixed by the recipe's name when several
    recipes are compared."""
    if group_by and group_by[0] in NO_GROUPS:
        return [g[0].id for g in groups]
    if group_by:
        return [_label(g[0], [f"{k}={format_value(g[0].fields().get(k))}" for k in group_by],
                       with_recipe=False) for g in groups]
    several = len({recipe_name(g[0]) for g in groups}) > 1
    keys = _label_keys_by_recipe(groups)
    return [_label(g[0], [f"{k}={format_value(g[0].flat_recipe().get(k))}"
                          for k in keys[(recipe_name(g[0]), g[0].role)]], several)
            for g in groups]


def _label_keys_by_recipe(groups: list[list[Run]]) -> dict[tuple[str, str], list[str]]:
    """`label_keys` of the groups of each (recipe name, role)."""
    keys: dict[tuple[str, str], list[str]] = {}
    for cluster in dict.fromkeys((recipe_name(g[0]), g[0].role) for g in groups):
        members = [g for g in groups if (recipe_name(g[0]), g[0].role) == cluster]
        keys[cluster] = label_keys([g[0] for g in members], [r for g in members for r in g])
    return keys


def _label(run: Run, parts: list[str], with_recipe: bool) -> str:
    """`key=value` parts as a label: a baseline's role first, the recipe's name in front when
    asked, cut to MAX_LABEL characters."""
    if is_baseline(run):
        parts = [run.role, *parts]
    text = ", ".join(parts)
    if with_recipe:
        text = f"{recipe_name(run)}: {text}" if text else recipe_name(run)
    label = text or recipe_name(run) or run.id
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"


def _grouped(runs: Sequence[Run], group_by: Sequence[str] | None) -> list[list[Run]]:
    """The groups in order: by recipe first (the order recipes first appear), then by the
    first run of each group."""
    order: dict[tuple, list[Run]] = {}
    for run, key in zip(runs, group_keys(runs, group_by)):
        order.setdefault(key, []).append(run)
    groups = list(order.values())
    if group_by:
        return groups
    recipes = list(dict.fromkeys(recipe_name(g[0]) for g in groups))
    return sorted(groups, key=lambda g: recipes.index(recipe_name(g[0])))


def _delta_summary(part: pd.DataFrame, delta_cols: Sequence[str], sign: float) -> dict[str, Any]:
    """A group's Δm: mean, std, 95 % interval, p, and the tasks with negative transfer."""
    mean, std, low, high = t_interval((sign * part["delta_m"]).tolist())
    row: dict[str, Any] = {"delta_m": mean, "delta_m_std": std, "delta_m_ci_low": low,
                           "delta_m_ci_high": high,
                           "delta_m_p": paired_p_value(part["delta_m"].tolist()),
                           "delta_n": int(part["delta_m"].notna().sum())}
    worse, unsure = [], []
    for column in delta_cols:
        values = part[column].tolist()  # Δm convention here: positive is worse
        task = column[len("delta."):]
        term = _finite_mean(values)
        p_value = paired_p_value(values)
        row[column] = sign * term if math.isfinite(term) else math.nan
        row[f"{column}_p"] = p_value
        if math.isfinite(term) and term > TOLERANCE:
            (worse if math.isfinite(p_value) and p_value < ALPHA else unsure).append(task)
    row["negative_transfer"] = worse
    row["not_significant"] = unsure
    return row


# -- the table ------------------------------------------------------------------------------


def compare(runs: Sequence[Run], split: str = "test", metrics: Sequence[str] = (),
            group_by: Sequence[str] | None = None, references: Sequence[Run] = (),
            convention: str = "delta_m") -> Comparison:
    """Builds the comparison table of `runs` on `split`.

    Args:
        runs: runs to compare, baselines among them (they are rows too, and the references
            of Δm).
        split: `test`, `validation` or `train`.
        metrics: `--metric` requests (`task.metric`, a task, or a metric); default: all
            columns, and one primary metric per task in Δm.
        group_by: recipe keys to group on; None groups runs that differ only in their seed;
            `["none"]` gives one row per run.
        references: more baseline runs, used for Δm but not shown as rows.
        convention: `delta_m` (lower is better) or `delta_p` (LibMTL's Δp = −Δm, higher is
            better); the columns keep their names.

    Returns:
        A Comparison. Groups come by recipe, then in the order of their first run.
    """
    if convention not in CONVENTIONS:
        raise UsageError(f"--convention takes {' or '.join(CONVENTIONS)}. Received: {convention!r}")
    sign = -1.0 if convention == "delta_p" else 1.0
    runs = list(runs)
    ids = [run.id for run in runs]
    known = set(ids)
    everything = runs + [r for r in references if r.id not in known and is_baseline(r)]
    wide = wide_metrics(everything, split)
    shown = wide.loc[ids]
    columns = select_metrics([c for c in wide.columns if shown[c].notna().any()], metrics)
    deltas, notes, used = delta_terms(everything, wide, columns, columns if metrics else None)
    per_run = pd.concat([wide[columns], sign * deltas], axis=1).loc[ids]
    delta_cols = [c for c in deltas.columns if c.startswith("delta.")]

    groups = _grouped(runs, group_by)
    keys = list(group_by) if group_by and group_by[0] not in NO_GROUPS else []
    frame = pd.DataFrame([_group_row(label, group, per_run, keys, columns, delta_cols, sign)
                          for label, group in zip(_labels(groups, group_by), groups)])
    frame["pareto"] = _pareto_mask(frame, headline_columns(columns))
    warnings = weak_statistics(frame, runs, split, bool(delta_cols))
    return Comparison(frame, columns, split, notes, per_run, warnings, convention, used)


def _group_row(label: str, group: list[Run], per_run: pd.DataFrame, keys: Sequence[str],
               columns: Sequence[str], delta_cols: Sequence[str], sign: float) -> dict[str, Any]:
    """One row of the table: the group's label, role, size, runs, `--group-by` values, the
    mean ± std of each metric column, and its Δm summary when there are Δ terms."""
    ids = [run.id for run in group]
    part = per_run.loc[ids]
    row: dict[str, Any] = {"label": label, "role": group[0].role, "n": len(group), "runs": ids}
    row.update({k: format_value(group[0].fields().get(k)) for k in keys})
    row.update(_mean_std(part, columns))
    if delta_cols:
        # the test and its sign work on Δm (positive: worse); only the shown values flip
        row.update(_delta_summary(sign * part[["delta_m", *delta_cols]], delta_cols, sign))
    return row


def _mean_std(part: pd.DataFrame, columns: Sequence[str]) -> dict[str, float]:
    """Each column's mean over a group's runs, and `<column>_std` (NaN for a single run)."""
    row = {}
    for column in columns:
        row[column] = part[column].mean()
        row[f"{column}_std"] = part[column].std(ddof=1) if len(part) > 1 else math.nan
    return row


def _pareto_mask(frame: pd.DataFrame, objectives: Sequence[str]) -> np.ndarray:
    """Whether each row is on the Pareto front of `objectives`; baselines never are."""
    mask = np.zeros(len(frame), dtype=bool)
    if not len(frame) or not len(objectives):
        return mask
    candidates = np.array([not role.startswith(BASELINE) for role in frame["role"]], dtype=bool)
    if candidates.any():
        higher = [bool(higher_is_better(c.split(".", 1)[1])) for c in objectives]
        mask[candidates] = pareto_front(frame.loc[candidates, objectives].to_numpy(), higher)
    return mask


def weak_statistics(frame: pd.DataFrame, runs: Sequence[Run], split: str, has_delta: bool
                    ) -> list[str]:
    """One counted line per kind of statistic that means little: groups of fewer than
    FEW_RUNS runs shown with a std or interval, tasks with fewer than FEW_ROWS labelled rows on
    the split (metrics.csv's `n`)."""
    warnings = []
    few = frame[(frame["n"] >= 2) & (frame["n"] < FEW_RUNS)] if len(frame) else frame
    if len(few):
        shown = "± std and 95 % interval" if has_delta else "± std"
        warnings.append(f"{len(few)} group(s) have fewer than {FEW_RUNS} runs (n = "
                        f"{', '.join(sorted({str(int(n)) for n in few['n']}))}): their {shown} "
                        f"rest on too few seeds; train more with --seeds")
    small: dict[str, dict[str, int]] = {}  # task → run id → n
    for run in runs:
        for row in run.metrics:
            if row.split == split and row.n is not None and row.n < FEW_ROWS:
                small.setdefault(row.task, {})[run.id] = row.n
    if small:
        parts = []
        for task, found in small.items():
            low, high = min(found.values()), max(found.values())
            parts.append(f"{task} in {len(found)} run(s) (n = {low}"
                         f"{f'-{high}' if high > low else ''})")
        warnings.append(f"fewer than {FEW_ROWS} labelled {split} rows for {', '.join(parts)}: "
                        f"metrics on so few rows change a lot from one split to the next")
    return warnings


def sort_frame(comparison: Comparison, column: str, reverse: bool = False) -> pd.DataFrame:
    """Sorts best first for a metric or Δm column, ascending otherwise.

    Raises:
        UsageError: the column is not in the table.
    """
    column = sort_column(comparison, column)
    ascending = True
    if "." in column and column in comparison.metrics:
        ascending = not bool(higher_is_better(column.split(".", 1)[1]))
    if column == "delta_m" and comparison.convention == "delta_p":
        ascending = False  # Δp: higher is better
    if reverse:
        ascending = not ascending
    return comparison.frame.sort_values(column, ascending=ascending, na_position="last",
                                        kind="stable")


SORT_ALIASES = {"delta": "delta_m", "Δm": "delta_m", "dm": "delta_m", "delta_p": "delta_m",
                "Δp": "delta_m"}


def sort_column(comparison: Comparison, column: str) -> str:
    """The table column `--sort` names: a column, an alias of Δm, or a metric of one task.

    Raises:
        UsageError: the column is not in the table.
    """
    frame = comparison.frame
    if column not in frame.columns:
        column = SORT_ALIASES.get(column, column)
    if column not in frame.columns:
        hits = [c for c in comparison.metrics if c.split(".", 1)[1] == column]
        column = hits[0] if len(hits) == 1 else column
    if column not in frame.columns or column == "runs":
        lists = ("runs", "negative_transfer", "not_significant")
        sortable = [c for c in frame.columns if c not in lists
                    and not c.endswith(("_std", "_p", "_ci_low", "_ci_high"))]
        raise UsageError(f"--sort: no column {column!r}.{did_you_mean(column, sortable)} "
                         f"Columns: {', '.join(sortable)}")
    return column
