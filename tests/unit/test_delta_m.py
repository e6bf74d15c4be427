"""Δm paired by split, its interval, the significance of negative transfer, primary metrics.

Run folders are written by hand (run.json, recipe.yaml, metrics.csv), as `mtl train` would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from mtl_runner import compare as cmp
from mtl_runner.results.reader import scan_runs

DATA = {"source": "csv", "path": "table.csv", "split": {"validation": 0.15, "test": 0.15}}
TASKS = {"a": {"type": "classification", "label": "kind"},
         "b": {"type": "regression", "label": "target"}}
T_975_2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom


def write_run(root: Path, run_id: str, metrics: dict[str, float], *, seed: int, role: str = "mtl",
              tasks: dict | None = None, n: int = 50, name: str = "toy",
              extra: dict | None = None, info: dict | None = None) -> Path:
    """A run folder: metrics as {"task.metric": value} on the test split."""
    path = root / run_id
    path.mkdir(parents=True)
    recipe = {"name": name, "data": DATA, "tasks": TASKS if tasks is None else tasks,
              "weighting": {"name": "static"}, "seed": seed, **(extra or {})}
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    (path / "run.json").write_text(json.dumps({
        "id": run_id, "name": name, "recipe_name": name, "status": "completed", "role": role,
        "seed": seed, "started_at": f"2026-01-01T00:00:{len(list(root.iterdir())):02d}+00:00",
        **(info or {})}))
    lines = ["task,metric,split,value,n"] + [
        f"{k.split('.')[0]},{k.split('.')[1]},test,{v},{n}" for k, v in metrics.items()]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


def write_seeds(root: Path, mtl: list[dict], base_a: list[dict], base_b: list[dict], **kw) -> None:
    """One MTL run and one baseline per task for each seed (lists indexed by seed)."""
    for seed, (m, a, b) in enumerate(zip(mtl, base_a, base_b)):
        write_run(root, f"mtl-s{seed}", m, seed=seed, **kw)
        write_run(root, f"base-a-s{seed}", a, seed=seed, role="baseline:a",
                  tasks={"a": TASKS["a"]}, **kw)
        write_run(root, f"base-b-s{seed}", b, seed=seed, role="baseline:b",
                  tasks={"b": TASKS["b"]}, **kw)


@pytest.fixture()
def split_matters(tmp_path: Path) -> Path:
    """Seed 0 drew an easy test split (MAE 1), seeds 1 and 2 hard ones (MAE 10). The MTL run
    beats its own split's baseline on seed 0 and loses by 5 % on the others; accuracy is the
    same as the baseline on every split. R² is near zero everywhere."""
    mae_base, mae_mtl = [1.0, 10.0, 10.0], [0.8, 10.5, 10.5]
    accuracy = [0.8, 0.7, 0.9]
    r2_base, r2_mtl = [0.02, 0.01, 0.01], [0.01, 0.02, 0.015]
    write_seeds(tmp_path,
                [{"a.accuracy": accuracy[s], "b.mae": mae_mtl[s], "b.r2": r2_mtl[s]}
                 for s in range(3)],
                [{"a.accuracy": accuracy[s]} for s in range(3)],
                [{"b.mae": mae_base[s], "b.r2": r2_base[s]} for s in range(3)])
    return tmp_path


def test_paired_delta_m_and_its_interval_differ_in_sign_from_pooled(split_matters):
    comparison = cmp.compare(scan_runs(split_matters))
    per_run = comparison.per_run
    # paired: b terms (0.8 − 1)/1 = −20 %, (10.5 − 10)/10 = +5 %, +5 %; a terms 0
    assert per_run.loc[["mtl-s0", "mtl-s1", "mtl-s2"], "delta.b"].tolist() == \
        pytest.approx([-20.0, 5.0, 5.0])
    assert per_run.loc[["mtl-s0", "mtl-s1", "mtl-s2"], "delta_m"].tolist() == \
        pytest.approx([-10.0, 2.5, 2.5])
    row = comparison.frame.set_index("role").loc["mtl"]
    mean = -5 / 3
    std = math.sqrt(((-10 - mean) ** 2 + 2 * (2.5 - mean) ** 2) / 2)
    half = T_975_2 * std / math.sqrt(3)
    assert row["n"] == 3 and row["delta_n"] == 3
    assert row["delta_m"] == pytest.approx(mean)  # MTL better, by pairing
    assert row["delta_m_std"] == pytest.approx(std)
    assert (row["delta_m_ci_low"], row["delta_m_ci_high"]) == pytest.approx((mean - half,
                                                                             mean + half))
    # pooling the baselines over seeds (B = mean MAE 7) would say the opposite
    pooled = sum(((m - 7.0) / 7.0 * 100 + 0.0) / 2 for m in (0.8, 10.5, 10.5)) / 3
    assert pooled > 0 > row["delta_m"]
    # one primary metric per task: R² ≈ 0 stays out of Δm
    assert comparison.delta_metrics == {"a": ["accuracy"], "b": ["mae"]}


def test_metric_selection_and_recipe_primary_metric_change_what_enters(split_matters):
    everything = cmp.compare(scan_runs(split_matters), metrics=["accuracy", "b"])
    assert everything.delta_metrics == {"a": ["accuracy"], "b": ["mae", "r2"]}
    # R² of 0.01 vs 0.02 is a −50 %/+100 % change: it swamps MAE when it enters
    assert everything.per_run.at["mtl-s1", "delta.b"] == pytest.approx((5.0 - 100.0) / 2)

    recipe = split_matters / "mtl-s1" / "recipe.yaml"
    data = yaml.safe_load(recipe.read_text())
    data["tasks"]["b"]["primary_metric"] = "r2"
    recipe.write_text(yaml.safe_dump(data))
    chosen = cmp.compare(scan_runs(split_matters), group_by=["none"])
    assert chosen.per_run.at["mtl-s1", "delta.b"] == pytest.approx(-100.0)  # r2 0.02 vs 0.01
    assert chosen.per_run.at["mtl-s0", "delta.b"] == pytest.approx(-20.0)  # still mae


def test_baselines_of_other_splits_are_never_pooled(split_matters):
    (split_matters / "base-b-s2" / "run.json").unlink()  # seed 2 lost its baseline b
    comparison = cmp.compare(scan_runs(split_matters))
    assert math.isnan(comparison.per_run.at["mtl-s2", "delta_m"])
    row = comparison.frame.set_index("role").loc["mtl"]
    assert row["delta_n"] == 2 and row["delta_m"] == pytest.approx((-10.0 + 2.5) / 2)
    assert any("no baseline on the same split" in note and "b in 1 run(s)" in note
               for note in comparison.notes)


def test_a_fixed_split_seed_pairs_every_run_with_the_same_baselines(tmp_path):
    fixed = {"data": {**DATA, "split": {**DATA["split"], "seed": 42}}}
    write_seeds(tmp_path, [{"a.accuracy": 0.9, "b.mae": 1.0}] * 2,
                [{"a.accuracy": 0.8}, {"a.accuracy": 1.0}], [{"b.mae": 1.0}, {"b.mae": 1.0}],
                extra=fixed)
    per_run = cmp.compare(scan_runs(tmp_path)).per_run
    # one split for all: B = mean over both baselines = 0.9
    assert per_run.at["mtl-s0", "delta.a"] == pytest.approx(0.0)
    assert per_run.at["mtl-s1", "delta.a"] == pytest.approx(0.0)


def test_negative_transfer_needs_a_significant_paired_test(tmp_path):
    # a: clearly worse on every seed (+20, +18.75, +21.25 %); b: noise around 0 (+5, −4, +2 %)
    write_seeds(tmp_path,
                [{"a.accuracy": a, "b.mae": b}
                 for a, b in ((0.64, 10.5), (0.65, 9.6), (0.63, 10.2))],
                [{"a.accuracy": 0.8}] * 3, [{"b.mae": 10.0}] * 3)
    row = cmp.compare(scan_runs(tmp_path)).frame.set_index("role").loc["mtl"]
    assert row["delta.a"] == pytest.approx(20.0) and row["delta.b"] == pytest.approx(1.0)
    # two-sided paired t-test over the seeds: t = mean / (sd / √n), 2 degrees of freedom
    for task, terms in (("a", [20.0, 18.75, 21.25]), ("b", [5.0, -4.0, 2.0])):
        mean = sum(terms) / 3
        sd = math.sqrt(sum((t - mean) ** 2 for t in terms) / 2)
        t = mean / (sd / math.sqrt(3))
        p_value = 1 - abs(t) / math.sqrt(2 + t * t)  # closed form of the t(2) two-sided p
        assert row[f"delta.{task}_p"] == pytest.approx(p_value)
    assert row["delta.a_p"] < cmp.ALPHA < row["delta.b_p"]
    assert row["negative_transfer"] == ["a"]
    assert row["not_significant"] == ["b"]


def test_one_run_is_never_flagged(tmp_path):
    write_seeds(tmp_path, [{"a.accuracy": 0.4, "b.mae": 30.0}], [{"a.accuracy": 0.8}],
                [{"b.mae": 10.0}])
    row = cmp.compare(scan_runs(tmp_path)).frame.set_index("role").loc["mtl"]
    assert row["delta_m"] == pytest.approx((50.0 + 200.0) / 2)
    assert math.isnan(row["delta_m_ci_low"]) and math.isnan(row["delta.a_p"])
    assert row["negative_transfer"] == [] and row["not_significant"] == ["a", "b"]


def test_delta_p_convention_is_minus_delta_m_and_sorts_higher_first(split_matters):
    runs = scan_runs(split_matters)
    dm = cmp.compare(runs, group_by=["none"])
    dp = cmp.compare(runs, group_by=["none"], convention="delta_p")
    assert dp.per_run["delta_m"].tolist() == pytest.approx((-dm.per_run["delta_m"]).tolist(),
                                                           nan_ok=True)
    assert dp.delta_title == "Δp %"
    best = cmp.sort_frame(dp, "delta_p")["label"].iloc[0]
    assert best == "mtl-s0" == cmp.sort_frame(dm, "delta_m")["label"].iloc[0]


def test_weak_statistics_are_one_counted_line_each(tmp_path):
    write_seeds(tmp_path, [{"a.accuracy": 0.9, "b.mae": 1.0}] * 2, [{"a.accuracy": 0.8}] * 2,
                [{"b.mae": 1.0}] * 2, n=12)
    warnings = cmp.compare(scan_runs(tmp_path)).warnings
    assert len(warnings) == 2
    few_runs = next(w for w in warnings if "fewer than 3 runs" in w)
    assert few_runs.startswith("3 group(s)")  # the MTL group and both baseline groups, n = 2
    assert "interval" in few_runs
    rows = next(w for w in warnings if "labelled test rows" in w)
    assert "a in 4 run(s) (n = 12)" in rows and "b in 4 run(s) (n = 12)" in rows


def test_groups_come_by_recipe_and_labels_show_keys_the_user_set(tmp_path):
    derived = {"model": {"trunk": {"type": "mmoe", "experts": 4, "batch_norm": None}}}
    plain = {"model": {"trunk": {"type": "shared_bottom", "units": [8], "batch_norm": "auto"}}}
    for seed in (0, 1):
        for weighting in ("static", "dwa"):
            write_run(tmp_path, f"alpha-{weighting}-{seed}", {"a.accuracy": 0.9}, seed=seed,
                      name="alpha", tasks={"a": TASKS["a"]},
                      extra={**plain, "weighting": {"name": weighting}},
                      info={"overrides": [f"weighting.name={weighting}", f"seed={seed}"]})
        write_run(tmp_path, f"beta-{seed}", {"a.accuracy": 0.8}, seed=seed, name="beta",
                  tasks={"a": TASKS["a"]}, extra=derived)
    frame = cmp.compare(scan_runs(tmp_path)).frame
    assert frame["label"].tolist() == ["alpha: weighting.name=static", "alpha: weighting.name=dwa",
                                       "beta"]
    assert frame["n"].tolist() == [2, 2, 2]


@pytest.mark.parametrize("df", [1, 2, 4, 9, 29])
def test_student_t_matches_scipy(df):
    stats = pytest.importorskip("scipy.stats")  # installed with scikit-learn; compare avoids it
    assert cmp.t_quantile(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
    for t in (0.0, 0.3, 1.7, 4.2, 25.0):
        assert cmp.t_two_sided_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-9,
                                                         abs=1e-15)
    values = [1.5, -0.2, 3.1, 0.7, 2.2][: max(2, min(df + 1, 5))]
    assert cmp.paired_p_value(values) == pytest.approx(stats.ttest_1samp(values, 0).pvalue,
                                                       rel=1e-9)
