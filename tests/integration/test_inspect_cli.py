"""`mtl runs`, `mtl show`, `mtl compare` through the CLI, over run folders written by hand."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtl_runner.cli import cli

DATA = {"source": "builtin", "name": "penguins", "split": {"validation": 0.15, "test": 0.15}}
TASKS = {"a": {"type": "classification", "label": "species"},
         "b": {"type": "regression", "label": "body_mass_g"}}
HISTORY = "epoch,stage,loss,val_loss,a_loss,b_loss,val_a_loss,val_b_loss\n" + "".join(
    f"{e},train,{2 / e},{2.2 / e},{1 / e},{1 / e},{1.1 / e},{1.1 / e}\n" for e in range(1, 7))


def write_run(root: Path, run_id: str, metrics: dict[str, float], *, seed: int = 0,
              role: str = "mtl", tasks: dict | None = None, weighting: str = "static",
              status: str = "completed", **info) -> Path:
    """A run directory written by hand: metrics as {"task.metric": value} on every split."""
    path = root / run_id
    path.mkdir(parents=True)
    recipe = {"name": "toy", "data": DATA, "tasks": TASKS if tasks is None else tasks,
              "weighting": {"name": weighting}, "training": {"epochs": 6}, "seed": seed}
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    started = f"2026-01-01T00:00:{len(list(root.iterdir())):02d}+00:00"
    (path / "run.json").write_text(json.dumps({
        "id": run_id, "name": "toy", "recipe_name": "toy", "status": status, "role": role,
        "started_at": started, "duration_s": 75.0, "seed": seed, **info}))
    lines = ["task,metric,split,value,n"] + [
        f"{k.split('.')[0]},{k.split('.')[1]},{split},{v},10"
        for split in ("validation", "test") for k, v in metrics.items()]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    (path / "history.csv").write_text(HISTORY)
    return path


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    root.mkdir()
    write_run(root, "20260101-000001-toy-s0aa", {"a.accuracy": 0.88, "b.mae": 12.0}, seed=0)
    write_run(root, "20260101-000002-toy-s1bb", {"a.accuracy": 0.84, "b.mae": 9.0}, seed=1)
    write_run(root, "20260101-000003-toy-dwcc", {"a.accuracy": 0.70, "b.mae": 20.0},
              weighting="dwa")
    write_run(root, "20260101-000004-base-a0dd", {"a.accuracy": 0.78}, role="baseline:a",
              tasks={"a": TASKS["a"]})
    write_run(root, "20260101-000005-base-a1ee", {"a.accuracy": 0.82}, role="baseline:a",
              tasks={"a": TASKS["a"]}, seed=1)
    write_run(root, "20260101-000006-base-b0ff", {"b.mae": 10.0}, role="baseline:b",
              tasks={"b": TASKS["b"]})
    failed = write_run(root, "20260101-000007-toy-fail", {}, status="failed", error="boom")
    (failed / "metrics.csv").unlink()
    return root


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_runs_lists_every_run_with_status_and_headline(results):
    result = invoke("runs", "--results", str(results))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 7
    first = next(line for line in lines if "s0aa" in line)
    assert "completed" in first and "a accuracy 0.8800" in first and "b mae 12.00" in first
    assert "1m15s" in first
    assert "failed" in next(line for line in lines if "fail" in line)


def test_runs_json_and_where(results):
    result = invoke("runs", "--results", str(results), "--format", "json",
                    "--where", "role=baseline:*")
    records = json.loads(result.stdout)
    assert [r["id"][-4:] for r in records] == ["a0dd", "a1ee", "b0ff"]
    assert records[0]["metrics"] == {"a.accuracy": 0.78}


def test_runs_empty_folder(tmp_path):
    result = invoke("runs", "--results", str(tmp_path / "none"))
    assert result.exit_code == 0
    assert "No runs in" in result.stdout


def test_show_by_prefix(results):
    result = invoke("show", "20260101-000001", "--results", str(results), "--tail", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Run 20260101-000001-toy-s0aa" in out and "status: completed" in out
    assert "weighting:\n    name: static" in out
    assert re.search(r"a\s+accuracy\s+0.8800\s+0.8800", out)
    assert "History (last 2 epochs)" in out and re.search(r"epoch\s+5\s+6", out)


def test_show_json_by_path(results):
    path = results / "20260101-000002-toy-s1bb"
    record = json.loads(invoke("show", str(path), "--format", "json").stdout)
    assert record["recipe"]["seed"] == 1
    assert [h["epoch"] for h in record["history"]] == [2, 3, 4, 5, 6]


def test_show_errors(results):
    ambiguous = CliRunner().invoke(cli, ["show", "2026", "--results", str(results)])
    assert ambiguous.exit_code == 2 and "matches 7 runs" in ambiguous.stderr
    missing = CliRunner().invoke(cli, ["show", "nope", "--results", str(results)])
    assert missing.exit_code == 2 and "Error: no run 'nope'" in missing.stderr
    (results / "20260101-000001-toy-s0aa" / "run.json").write_text('{"id": "x", "sta')
    broken = CliRunner().invoke(cli, ["show", "20260101-000001", "--results", str(results)])
    assert broken.exit_code == 1 and "run.json is truncated" in broken.stderr
    assert "Traceback" not in broken.output


def test_compare_table_groups_seeds_and_shows_delta_m(results):
    result = invoke("compare", "--results", str(results))
    assert result.exit_code == 0, result.output
    out = result.stdout
    static = next(line for line in out.splitlines() if "weighting.name=static" in line)
    assert "0.8600 ± 0.0283" in static  # a.accuracy over the two seeds
    assert "10.50 ± 2.12" in static  # b.mae
    # Δm paired by split: seed 0 meets baselines a 0.78 and b 10 (a −12.82 %, b +20 %: +3.59 %);
    # seed 1 has a baseline for a only, so no Δm (baselines of seed 0 are not pooled in)
    assert "+3.59" in static and "b untested (n=1)" in static
    assert re.search(r"\s2\s", static)  # n
    dwa = next(line for line in out.splitlines() if "weighting.name=dwa" in line)
    assert "+55.13" in dwa and "a, b untested (n=1)" in dwa  # one run: never flagged
    assert "1 run(s) not completed left out (failed)" in result.stderr
    assert "no baseline on the same split (data, split seed, fold) for b in 1 run(s)" \
        in result.stderr


def test_compare_csv_numbers_and_where(results):
    result = invoke("compare", "--results", str(results), "--format", "csv",
                    "--where", "role=mtl")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["label"] for r in rows] == ["weighting.name=static", "weighting.name=dwa"]
    assert float(rows[0]["a.accuracy"]) == pytest.approx(0.86)
    assert float(rows[0]["delta_m"]) == pytest.approx((-0.10 / 0.78 * 100 + 20) / 2)
    assert rows[0]["negative_transfer"] == "" and rows[0]["not_significant"] == "b"
    assert rows[0]["pareto"] == "True" and rows[1]["pareto"] == "False"
    assert rows[0]["runs"] == "20260101-000001-toy-s0aa;20260101-000002-toy-s1bb"


def test_compare_named_runs_per_run_sorted_json(results):
    result = invoke("compare", "20260101-000001", "20260101-000002", "20260101-000003",
                    "--results", str(results), "--group-by", "none", "--sort", "delta_m",
                    "--format", "json", "--metric", "accuracy")
    records = json.loads(result.stdout)
    assert [r["label"][-4:] for r in records] == ["s0aa", "s1bb", "dwcc"]
    # accuracy only, each against the baseline of its own split (seed 0: 0.78, seed 1: 0.82)
    assert [r["delta_m"] for r in records] == pytest.approx(
        [-0.10 / 0.78 * 100, -0.02 / 0.82 * 100, 0.08 / 0.78 * 100])
    assert "b.mae" not in records[0]


def test_compare_group_by_tsv_md_and_output_file(results, tmp_path):
    tsv = invoke("compare", "--results", str(results), "--where", "role=mtl",
                 "--group-by", "seed", "--format", "tsv").stdout
    header, *rows = [line.split("\t") for line in tsv.splitlines()]
    assert header[:5] == ["label", "role", "n", "runs", "seed"]
    assert [r[0] for r in rows] == ["seed=0", "seed=1"]
    output = tmp_path / "table.md"
    result = invoke("compare", "--results", str(results), "--output", str(output))
    assert result.exit_code == 0
    text = output.read_text()
    assert text.startswith("| # | group")
    assert "| 0.8600 ± 0.0283 |" in text


def test_compare_diff(results):
    out = invoke("compare", "--results", str(results), "--where", "role=mtl", "--diff").stdout
    header = out.splitlines()[0].split()
    assert header == ["run", "role", "weighting.name", "seed"]


def test_compare_usage_errors(results, tmp_path):
    bad_metric = CliRunner().invoke(cli, ["compare", "--results", str(results),
                                          "--metric", "acuracy"])
    assert bad_metric.exit_code == 2 and "Did you mean" in bad_metric.stderr
    bad_where = CliRunner().invoke(cli, ["compare", "--results", str(results), "--where", "sed=1"])
    assert bad_where.exit_code == 2 and "Did you mean 'seed'" in bad_where.stderr
    nothing = CliRunner().invoke(cli, ["compare", "--results", str(tmp_path / "empty")])
    assert nothing.exit_code == 1 and "Error: no runs to compare" in nothing.stderr


def test_compare_skips_garbled_metrics_and_half_written_run_json(results):
    garbled = results / "20260101-000003-toy-dwcc"
    (garbled / "metrics.csv").write_text("task,metric,split,value,n\na,accuracy,test,0.7")
    half = results / "20260101-000002-toy-s1bb"
    (half / "run.json").write_text(json.dumps({"id": half.name, "status": "completed"})[:25])
    result = invoke("compare", "--results", str(results))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: skipped")]
    assert len(warnings) == 2
    assert any(str(garbled) in w and "metrics.csv line 2" in w for w in warnings)
    assert any(str(half) in w and "run.json is truncated" in w for w in warnings)
    assert "Traceback" not in result.output
    static = next(line for line in result.stdout.splitlines() if "toy" in line or "static" in line)
    assert "0.8800" in static and "+3.59" in static  # only seed 0 left; Δm = +3.59 %


def test_compare_plot_writes_a_png(results, tmp_path):
    picture = tmp_path / "out.png"
    result = invoke("compare", "--results", str(results), "--plot", str(picture))
    assert result.exit_code == 0, result.output
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000


def test_inspect_commands_never_import_tensorflow(results, tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from mtl_runner.cli import cli
        for args in (["runs"], ["show", "20260101-000001"],
                     ["compare", "--plot", {str(tmp_path / 'p.png')!r}]):
            try:
                cli(args + ["--results", {str(results)!r}], standalone_mode=False)
            except SystemExit:
                pass
        heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "MTL_RESULTS": str(results)})
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    assert "weighting.name=static" in done.stdout


@pytest.mark.slow
def test_end_to_end_over_real_tiny_runs(tmp_path):
    """Two seeds of the quickstart plus one baseline per task, 2 epochs each, then compare."""
    root = Path(__file__).resolve().parents[2]
    recipe = str(root / "recipes" / "quickstart.yaml")
    results = tmp_path / "results"
    base = ["train", recipe, "--results", str(results), "--set", "training.epochs=2"]
    for seed in (0, 1):
        assert invoke(*base, "--set", f"seed={seed}").exit_code == 0
    for task, spec in {"species": "{type: classification, label: species}",
                       "sex": "{type: binary, label: sex}",
                       "body_mass": "{type: regression, label: body_mass_g}"}.items():
        assert invoke(*base, "--set", f"tasks={{{task}: {spec}}}", "--name", f"base-{task}"
                      ).exit_code == 0
        run = next(results.glob(f"*-base-{task}-*"))
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "role": f"baseline:{task}"}))
    result = invoke("compare", "--results", str(results), "--format", "json",
                    "--plot", str(tmp_path / "p.png"))
    records = json.loads(result.stdout)
    mtl = next(r for r in records if r["role"] == "mtl")
    assert mtl["n"] == 2 and mtl["delta_m"] is not None
    assert 0 <= mtl["species.accuracy"] <= 1 and mtl["species.accuracy_std"] is not None
    assert (tmp_path / "p.png").stat().st_size > 20_000


def test_show_plot_writes_a_png_of_the_runs_training(results, tmp_path):
    from PIL import Image

    run = results / "20260101-000001-toy-s0aa"
    (run / "history.csv").write_text(
        "epoch,stage,loss,a_loss,a_accuracy,val_a_accuracy,b_loss,b_mae,weight_a,weight_b\n"
        "1,warmup,2.0,1.0,0.5,0.4,1.0,20,1.0,1.0\n"
        "2,finetune,1.5,0.8,0.6,0.5,0.7,15,1.2,0.8\n")
    out = tmp_path / "run.png"
    outcome = CliRunner().invoke(cli, ["show", run.name, "--results", str(results), "--plot", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert f"wrote {out}" in outcome.output
    width, height = Image.open(out).size
    assert width > 900 and height > 300  # three panels: a, b and the task weights


def test_show_plot_of_a_history_without_epochs_is_a_one_line_error(results, tmp_path):
    run = results / "20260101-000003-toy-dwcc"
    (run / "history.csv").write_text("loss\n1.0\n")
    out = tmp_path / "run.png"
    outcome = CliRunner().invoke(cli, ["show", run.name, "--results", str(results),
                                       "--plot", str(out)])
    assert outcome.exit_code == 1
    assert outcome.stderr.strip() == (f"Error: cannot plot {run.name}: {run / 'history.csv'}: "
                                      "history.csv has no 'epoch' column")
    assert not out.exists()
