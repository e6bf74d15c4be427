"""Tables, means ± std over seeds, Δm against baselines, negative transfer, Pareto front."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from mtl_runner import compare as cmp
from mtl_runner.errors import UsageError
from mtl_runner.results.reader import scan_runs

DATA = {"source": "builtin", "name": "penguins", "split": {"validation": 0.15, "test": 0.15}}
TASKS = {"a": {"type": "classification", "label": "species"},
         "b": {"type": "regression", "label": "body_mass_g"}}


def write_run(root: Path, run_id: str, metrics: dict[str, float], *, seed: int = 0,
              role: str = "mtl", tasks: dict | None = None, data: dict | None = None,
              weighting: str = "static", status: str = "completed", split: str = "test",
              started: str | None = None) -> Path:
    """A run directory written by hand: metrics as {"task.metric": value}."""
    path = root / run_id
    path.mkdir(parents=True)
    tasks = TASKS if tasks is None else tasks
    recipe = {"name": "toy", "data": data or DATA, "tasks": tasks,
              "model": {"trunk": {"type": "shared_bottom", "units": [8]}},
              "weighting": {"name": weighting}, "training": {"epochs": 2}, "seed": seed}
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    info = {"id": run_id, "name": "toy", "recipe_name": "toy", "status": status, "role": role,
            "started_at": started or f"2026-01-01T00:00:{len(list(root.iterdir())):02d}+00:00",
            "duration_s": 1.5, "seed": seed, "pid": 1, "host": "elsewhere"}
    (path / "run.json").write_text(json.dumps(info))
    lines = ["task,metric,split,value,n"]
    lines += [f"{k.split('.')[0]},{k.split('.')[1]},{split},{v},10" for k, v in metrics.items()]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def hand_example(tmp_path: Path) -> Path:
    """Two MTL seeds, a second config, and baselines; Δm worked out by hand in the tests."""
    write_run(tmp_path, "r1-mtl-s0", {"a.accuracy": 0.88, "b.mae": 12.0}, seed=0)
    write_run(tmp_path, "r2-mtl-s1", {"a.accuracy": 0.84, "b.mae": 9.0}, seed=1)
    write_run(tmp_path, "r3-dwa-s0", {"a.accuracy": 0.70, "b.mae": 20.0}, seed=0,
              weighting="dwa")
    write_run(tmp_path, "r4-base-a0", {"a.accuracy": 0.78}, seed=0, role="baseline:a",
              tasks={"a": TASKS["a"]})
    write_run(tmp_path, "r5-base-a1", {"a.accuracy": 0.82}, seed=1, role="baseline:a",
              tasks={"a": TASKS["a"]})
    write_run(tmp_path, "r6-base-b0", {"b.mae": 10.0}, seed=0, role="baseline:b",
              tasks={"b": TASKS["b"]})
    write_run(tmp_path, "r8-base-b1", {"b.mae": 10.0}, seed=1, role="baseline:b",
              tasks={"b": TASKS["b"]})
    # Same task, other data: must not serve as a baseline.
    write_run(tmp_path, "r7-base-b-other", {"b.mae": 1.0}, role="baseline:b",
              tasks={"b": TASKS["b"]}, data={**DATA, "name": "other"})
    return tmp_path


def test_mean_and_std_over_seeds_in_default_groups(hand_example):
    runs = [r for r in scan_runs(hand_example) if not cmp.is_baseline(r)]
    frame = cmp.compare(runs).frame.set_index("label")
    assert list(frame.index) == ["weighting.name=static", "weighting.name=dwa"]
    static = frame.loc["weighting.name=static"]
    assert static["n"] == 2
    assert static["runs"] == ["r1-mtl-s0", "r2-mtl-s1"]
    assert static["a.accuracy"] == pytest.approx(0.86)
    assert static["a.accuracy_std"] == pytest.approx(0.04 / math.sqrt(2))
    assert static["b.mae"] == pytest.approx(10.5)
    assert static["b.mae_std"] == pytest.approx(3 / math.sqrt(2))
    assert math.isnan(frame.loc["weighting.name=dwa", "a.accuracy_std"])  # n = 1


# Paired by split (each seed draws its own): seed 0 runs meet baseline a = 0.78, seed 1 runs
# 0.82 (accuracy, higher is better); baseline b = 10 on both seeds (mae, lower is better).
R1_A, R2_A, R3_A = -(0.88 - 0.78) / 0.78 * 100, -(0.84 - 0.82) / 0.82 * 100, \
    -(0.70 - 0.78) / 0.78 * 100
R1, R2, R3 = (R1_A + 20.0) / 2, (R2_A - 10.0) / 2, (R3_A + 100.0) / 2


def test_delta_m_on_a_hand_computed_example(hand_example):
    comparison = cmp.compare(scan_runs(hand_example))
    per_run = comparison.per_run
    # r1: a → −(0.88 − 0.78)/0.78 = −12.8 %, b → +(12 − 10)/10 = +20 %; Δm = +3.59 %.
    assert per_run.at["r1-mtl-s0", "delta.a"] == pytest.approx(R1_A)
    assert per_run.at["r1-mtl-s0", "delta.b"] == pytest.approx(20.0)
    assert per_run.at["r1-mtl-s0", "delta_m"] == pytest.approx(R1)
    # r2: a → −2.44 %, b → −10 %; Δm = −6.22 % (better than the baselines).
    assert per_run.at["r2-mtl-s1", "delta_m"] == pytest.approx(R2)
    # r3: a → +10.3 %, b → +100 %; Δm = +55.1 %.
    assert per_run.at["r3-dwa-s0", "delta_m"] == pytest.approx(R3)

    frame = comparison.frame.set_index("label")
    static = frame.loc["weighting.name=static"]
    assert static["delta_m"] == pytest.approx((R1 + R2) / 2)
    assert static["delta_m_std"] == pytest.approx(abs(R1 - R2) / math.sqrt(2))
    # mean b term +5 % but +20 and −10 over two seeds: not significant; a is better
    assert static["negative_transfer"] == [] and static["not_significant"] == ["b"]
    # one run: never flagged, left untested
    assert frame.loc["weighting.name=dwa", "negative_transfer"] == []
    assert frame.loc["weighting.name=dwa", "not_significant"] == ["a", "b"]
    # Baselines are rows too, without Δm.
    assert math.isnan(frame.loc["baseline:a", "delta_m"])
    assert frame.loc["baseline:a", "a.accuracy"] == pytest.approx(0.80)


def test_baselines_given_as_references_only(hand_example):
    runs = scan_runs(hand_example)
    rows = [r for r in runs if not cmp.is_baseline(r)]
    comparison = cmp.compare(rows, references=runs)
    assert list(comparison.frame["role"]) == ["mtl", "mtl"]
    assert comparison.per_run.at["r1-mtl-s0", "delta_m"] == pytest.approx(R1)


def test_missing_baseline_is_a_note_and_delta_averages_the_others(hand_example):
    runs = [r for r in scan_runs(hand_example) if r.role != "baseline:b" or "other" in r.id]
    comparison = cmp.compare(runs)
    assert comparison.per_run.at["r1-mtl-s0", "delta_m"] == pytest.approx(R1_A)
    assert any("no baseline run with the same data for: b" in n for n in comparison.notes)


def test_task_delta_averages_metrics_with_their_directions():
    # accuracy up 10 % (good, −10), macro_f1 up 10 % (good, −10), loss up 50 % (bad, +50).
    delta = cmp.task_delta({"accuracy": 0.88, "macro_f1": 0.55, "loss": 0.3},
                           {"accuracy": 0.80, "macro_f1": 0.50, "loss": 0.2})
    assert delta == pytest.approx((-10 - 10 + 50) / 3)
    assert math.isnan(cmp.task_delta({"custom": 1.0}, {"custom": 2.0}))  # direction unknown


def test_pareto_front():
    points = np.array([[0.9, 10.0],    # front: best accuracy
                       [0.8, 5.0],     # front: best mae
                       [0.8, 6.0],     # dominated by row 1
                       [0.85, 7.0],    # front
                       [np.nan, 1.0]])  # incomplete: never on the front
    mask = cmp.pareto_front(points, [True, False])
    assert mask.tolist() == [True, True, False, True, False]


def test_pareto_column_marks_groups(hand_example):
    frame = cmp.compare(scan_runs(hand_example)).frame.set_index("label")
    assert bool(frame.loc["weighting.name=static", "pareto"]) is True
    assert bool(frame.loc["weighting.name=dwa", "pareto"]) is False
    assert bool(frame.loc["baseline:a", "pareto"]) is False


def test_select_metrics():
    available = ["a.accuracy", "a.macro_f1", "b.mae", "b.r2"]
    assert cmp.select_metrics(available, ["accuracy"]) == ["a.accuracy"]
    assert cmp.select_metrics(available, ["b"]) == ["b.mae", "b.r2"]
    assert cmp.select_metrics(available, ["b.r2,a.accuracy"]) == ["a.accuracy", "b.r2"]
    with pytest.raises(UsageError, match="Did you mean 'accuracy'"):
        cmp.select_metrics(available, ["acuracy"])


def test_group_by_a_key_and_per_run(hand_example):
    runs = [r for r in scan_runs(hand_example) if not cmp.is_baseline(r)]
    by_seed = cmp.compare(runs, group_by=["seed"]).frame.set_index("label")
    assert by_seed.loc["seed=0", "n"] == 2
    assert by_seed.loc["seed=0", "a.accuracy"] == pytest.approx((0.88 + 0.70) / 2)
    per_run = cmp.compare(runs, group_by=["none"]).frame
    assert list(per_run["label"]) == ["r1-mtl-s0", "r2-mtl-s1", "r3-dwa-s0"]
    with pytest.raises(UsageError, match="Did you mean 'weighting.name'"):
        cmp.compare(runs, group_by=["weighting.nam"])


def test_sort_best_first(hand_example):
    runs = [r for r in scan_runs(hand_example) if not cmp.is_baseline(r)]
    comparison = cmp.compare(runs, group_by=["none"])
    assert list(cmp.sort_frame(comparison, "b.mae")["label"]) == \
        ["r2-mtl-s1", "r1-mtl-s0", "r3-dwa-s0"]
    assert list(cmp.sort_frame(comparison, "accuracy")["label"]) == \
        ["r1-mtl-s0", "r2-mtl-s1", "r3-dwa-s0"]
    assert list(cmp.sort_frame(comparison, "accuracy", reverse=True)["label"])[0] == "r3-dwa-s0"
    with pytest.raises(UsageError, match="no column"):
        cmp.sort_frame(comparison, "nope")


def test_diff_table_lists_only_differing_keys(hand_example):
    runs = [r for r in scan_runs(hand_example) if not cmp.is_baseline(r)]
    frame = cmp.diff_table(runs)
    assert list(frame.columns) == ["role", "weighting.name", "seed"]
    assert frame.loc["r3-dwa-s0", "weighting.name"] == "dwa"
