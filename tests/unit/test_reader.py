"""Reading run directories: robust to broken files, `crashed` detection, RUN resolution."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtl_runner.errors import RunError, UsageError
from mtl_runner.results import reader

RECIPE = {"name": "toy", "data": {"source": "builtin", "name": "penguins"},
          "tasks": {"a": {"type": "binary", "label": "sex"}},
          "model": {"trunk": {"type": "shared_bottom", "units": [64, 32]}},
          "weighting": {"name": "static"}, "training": {"epochs": 200}, "seed": 0}
METRICS = "task,metric,split,value,n\na,accuracy,test,0.75,20\na,f1,test,0.5,20\n"


def make_run(root: Path, run_id: str, status: str = "completed", metrics: str | None = METRICS,
             **info) -> Path:
    path = root / run_id
    path.mkdir(parents=True)
    (path / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    (path / "run.json").write_text(json.dumps({"id": run_id, "status": status, "role": "mtl",
                                               "started_at": "2026-01-01T00:00:00+00:00",
                                               **info}))
    if metrics is not None:
        (path / "metrics.csv").write_text(metrics)
    return path


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_read_run_reads_every_file(tmp_path):
    run = reader.read_run(make_run(tmp_path, "20260101-000000-toy-ab12"))
    assert run.id == "20260101-000000-toy-ab12"
    assert run.status == "completed"
    assert [(m.task, m.metric, m.value, m.n) for m in run.metrics] == \
        [("a", "accuracy", 0.75, 20), ("a", "f1", 0.5, 20)]
    assert run.flat_recipe()["model.trunk.units"] == [64, 32]
    assert run.fields()["status"] == "completed"
    assert [m.metric for m in run.headline("test")] == ["accuracy"]


@pytest.mark.parametrize("name, content, message", [
    ("metrics.csv", "task,metric,split,value,n\na,accuracy,test,abc,20\n",
     "metrics.csv line 2: value 'abc' is not a number"),
    ("metrics.csv", "task,metric,split,value,n\na,accuracy,te", "metrics.csv line 2 has 3 fields"),
    ("metrics.csv", "\x00\x01garbage", "metrics.csv lacks the column(s) task, metric, split"),
    ("run.json", '{"id": "x", "status": "compl', "run.json is truncated or not JSON"),
    ("run.json", "", "run.json is empty"),
    ("run.json", '{"id": "x"}', "run.json has no 'status'"),
    ("recipe.yaml", "name: [unclosed", "recipe.yaml is not valid YAML"),
])
def test_broken_file_skips_the_run_with_one_line_naming_it(tmp_path, name, content, message):
    make_run(tmp_path, "good")
    broken = make_run(tmp_path, "broken")
    (broken / name).write_text(content)
    warnings: list[str] = []
    runs = reader.scan_runs(tmp_path, warnings.append)
    assert [r.id for r in runs] == ["good"]
    assert len(warnings) == 1
    assert str(broken) in warnings[0] and message in warnings[0]
    assert "\n" not in warnings[0]


def test_missing_files(tmp_path):
    make_run(tmp_path, "completed-no-metrics", metrics=None)
    make_run(tmp_path, "failed-no-metrics", status="failed", metrics=None)
    (tmp_path / "only-recipe").mkdir()
    (tmp_path / "only-recipe" / "recipe.yaml").write_text("name: x\n")
    (tmp_path / "empty").mkdir()  # just created by another process: ignored silently
    warnings: list[str] = []
    runs = reader.scan_runs(tmp_path, warnings.append)
    assert [r.id for r in runs] == ["failed-no-metrics"]
    assert runs[0].metrics == []
    assert sorted(w.split(":")[0] for w in warnings) == \
        [f"skipped {tmp_path / 'completed-no-metrics'}", f"skipped {tmp_path / 'only-recipe'}"]
    assert reader.scan_runs(tmp_path / "absent") == []


def test_crashed_is_a_running_run_whose_process_is_gone(tmp_path):
    host = socket.gethostname()
    make_run(tmp_path, "gone", status="running", pid=dead_pid(), host=host)
    make_run(tmp_path, "alive", status="running", pid=__import__("os").getpid(), host=host)
    make_run(tmp_path, "remote", status="running", pid=dead_pid(), host=host + "-elsewhere")
    status = {r.id: r.status for r in reader.scan_runs(tmp_path)}
    assert status == {"gone": "crashed", "alive": "running", "remote": "running"}


def test_resolve_run_by_id_prefix_and_path(tmp_path):
    first = make_run(tmp_path, "20260101-000000-toy-ab12")
    make_run(tmp_path, "20260101-000000-toy-cd34")
    assert reader.resolve_run("20260101-000000-toy-ab12", tmp_path) == first
    assert reader.resolve_run("20260101-000000-toy-a", tmp_path) == first
    assert reader.resolve_run(str(first), "/nonexistent") == first
    with pytest.raises(UsageError, match="matches 2 runs"):
        reader.resolve_run("2026", tmp_path)
    with pytest.raises(UsageError, match="no run '20260101-000000-toy-ab13'.*Did you mean"):
        reader.resolve_run("20260101-000000-toy-ab13", tmp_path)
    with pytest.raises(UsageError) as error:
        reader.resolve_run("x", tmp_path)
    assert error.value.exit_code == 2


def test_load_one_reports_a_broken_run_json_as_an_error(tmp_path):
    path = make_run(tmp_path, "r1")
    (path / "run.json").write_text('{"id": "r1", "sta')
    with pytest.raises(RunError, match="run.json is truncated"):
        reader.load_one("r1", tmp_path)


def test_where_filters(tmp_path):
    make_run(tmp_path, "a")
    make_run(tmp_path, "b", status="failed")
    runs = reader.scan_runs(tmp_path)
    ids = lambda *where: [r.id for r in reader.filter_runs(runs, where)]  # noqa: E731
    assert ids("status=failed") == ["b"]
    assert ids("status!=failed") == ["a"]
    assert ids("training.epochs=200") == ["a", "b"]
    assert ids("training.epochs=200.0") == ["a", "b"]
    assert ids("model.trunk.units=[64, 32]") == ["a", "b"]
    assert ids("model.trunk.units=[64,32]") == ["a", "b"]
    assert ids("weighting.name=stat*") == ["a", "b"]
    assert ids("training.epochs=20") == []
    assert ids("id=a", "status=completed") == ["a"]
    with pytest.raises(UsageError, match="Did you mean 'weighting.name'"):
        ids("weighting.nme=static")
    with pytest.raises(UsageError, match="KEY=VALUE"):
        ids("status")


def test_flatten():
    assert reader.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == \
        {"a.b": 1, "a.c.d": [1, 2], "e": {}}
