"""Nothing lost, nothing unexpected: concurrent runs, full disks, read-only folders, run
references that try to leave the results folder, and how models and recipes are loaded."""

from __future__ import annotations

import ast
import errno
import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_runner.cli import cli
from mtl_runner.errors import UsageError
from mtl_runner.results import reader
from mtl_runner.results.run_dir import RunDirectory
from tests.conftest import REPO

# Runs `mtl` with the first run id forced to a fixed value, so that two processes started
# together are sure to collide on it: one must win the folder, the other must pick a new id.
COLLIDING_MTL = """
import sys
import mtl_runner.results.run_dir as run_dir

real, tries = run_dir.new_run_id, []
def first_fixed(name, now=None):
    tries.append(name)
    return f"20300101-000000-{name}-0000" if len(tries) == 1 else real(name, now)
run_dir.new_run_id = first_fixed
from mtl_runner.cli import main
sys.argv = ["mtl", *sys.argv[1:]]
main()
"""


def statuses(results: Path) -> dict[str, str]:
    return {p.parent.name: json.loads(p.read_text())["status"] for p in results.glob("*/run.json")}


def test_two_processes_starting_the_same_recipe_together_get_two_runs(write_recipe, tmp_path):
    recipe, results = write_recipe(), tmp_path / "results"
    command = [sys.executable, "-c", COLLIDING_MTL, "train", str(recipe), "--results",
               str(results), "--set", "training.epochs=1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
           "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    found = statuses(results)
    assert len(found) == 2 and set(found.values()) == {"completed"}, found
    assert "20300101-000000-tiny-0000" in found  # one took the contested id, the other did not
    pids = {json.loads((results / run / "run.json").read_text())["pid"] for run in found}
    assert len(pids) == 2  # each folder belongs to exactly one process
    for run in found:
        assert {"recipe.yaml", "metrics.csv", "history.csv", "model.keras"} <= {
            p.name for p in (results / run).iterdir()}
        assert not [p for p in (results / run).iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_results_folder_is_named(write_recipe, tmp_path, runner, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    real_mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):  # root ignores chmod, so the file system is simulated
        if self.parent == results:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert (f"Error: cannot create a run folder in {results}: Read-only file system. "
            f"Choose a writable folder with --results.") in outcome.output
    assert list(results.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_results_folder_is_named(write_recipe, tmp_path, runner):
    results = tmp_path / "results"
    results.mkdir(mode=0o555)
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)])
    assert outcome.exit_code == 1 and f"cannot create a run folder in {results}" in outcome.output


def test_a_results_folder_that_cannot_be_made_is_named(write_recipe, tmp_path, runner):
    results = tmp_path / "table.csv" / "results"  # under a file
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert f"Error: cannot create the results folder {results}: Not a directory." in outcome.output


def test_a_full_disk_fails_the_run_naming_the_file_and_keeps_what_was_written(
        write_recipe, tmp_path, runner, monkeypatch):
    from mtl_runner.results import run_dir

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        return FullDisk(handle) if ".metrics.csv." in os.readlink(f"/proc/self/fd/{fd}") else handle

    monkeypatch.setattr(run_dir.os, "fdopen", fdopen)
    results = tmp_path / "results"
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)])
    [run] = list(results.iterdir())
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    assert f"Error: cannot write {run / 'metrics.csv'}: No space left on device" in outcome.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "No space left on device" in info["error"]
    written = {p.name for p in run.iterdir()}
    assert {"history.csv", "recipe.yaml", "run.json"} <= written
    assert not written & {"metrics.csv", "model.keras"} and not any(".tmp" in n for n in written)
    assert len((run / "history.csv").read_text().splitlines()) == 3  # header + 2 epochs


# -- run references stay inside the results folder -------------------------------------------


def fake_run(folder: Path, status: str = "completed") -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"status": status, "started_at": "2026"}))
    (folder / "recipe.yaml").write_text("name: x\ntasks: {a: {type: binary, label: a}}\n")
    (folder / "metrics.csv").write_text("task,metric,split,value\na,accuracy,test,0.5\n")
    return folder


def test_a_linked_run_folder_pointing_outside_is_skipped_and_refused(tmp_path, runner):
    results = tmp_path / "results"
    fake_run(results / "20260101-000000-x-0001")
    outside = fake_run(tmp_path / "elsewhere" / "secret")
    (results / "20260101-000000-x-0002").symlink_to(outside, target_is_directory=True)
    (results / "20260101-000000-x-0003").symlink_to(results / "20260101-000000-x-0001")

    listed = runner.invoke(cli, ["runs", "--results", str(results), "--format", "json"])
    assert listed.exit_code == 0, listed.output
    ids = [r["id"] for r in json.loads(listed.stdout)]
    assert ids == ["20260101-000000-x-0001", "20260101-000000-x-0003"]  # a link inside is fine
    assert f"skipped {results / '20260101-000000-x-0002'}: a link to {outside}" in listed.stderr

    shown = runner.invoke(cli, ["show", "20260101-000000-x-0002", "--results", str(results)])
    assert shown.exit_code == 2 and "outside" in shown.output and "Traceback" not in shown.output
    compared = runner.invoke(cli, ["compare", "20260101-000000-x-0002", "--results", str(results)])
    assert compared.exit_code == 2 and "refused" in compared.output


@pytest.mark.parametrize("ref", ["../elsewhere/secret", "{tmp}/elsewhere/secret", "..", "/etc"])
def test_a_run_reference_from_a_recipe_cannot_be_a_path(tmp_path, ref):
    results = tmp_path / "results"
    fake_run(results / "20260101-000000-x-0001")
    fake_run(tmp_path / "elsewhere" / "secret")
    with pytest.raises(UsageError, match="must be a run id in .*, not a path"):
        reader.resolve_run(ref.replace("{tmp}", str(tmp_path)), results, allow_path=False)
    assert reader.resolve_run("20260101-000000-x", results, allow_path=False).name.endswith("0001")


def test_ids_with_dot_dot_never_match_a_run(tmp_path):
    results = tmp_path / "results"
    fake_run(results / "20260101-000000-x-0001")
    fake_run(tmp_path / "20260101-000000-x-0009")  # a sibling of the results folder
    with pytest.raises(UsageError, match="no run"):
        reader.resolve_run("../20260101-000000-x-0009x", results)


@pytest.mark.parametrize("name", ["../escape", "/tmp/escape", "a/b", ""])
def test_run_names_cannot_leave_the_results_folder(tmp_path, name):
    with pytest.raises(UsageError):
        RunDirectory.create(tmp_path / "results", name)
    assert RunDirectory.create(tmp_path / "results", "..").path.parent == tmp_path / "results"


# -- no unexpected code ----------------------------------------------------------------------


def calls(name: str):
    """(file, call node) for every call of a function or method `name` in the package."""
    for file in sorted((REPO / "mtl_runner").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield file, node


def keyword(node: ast.Call, name: str):
    found = [k.value for k in node.keywords if k.arg == name]
    return found[0] if found else None


def test_every_model_load_is_in_safe_mode():
    loads = list(calls("load_model"))
    assert loads, "expected at least one keras.saving.load_model call"
    for file, node in loads:
        if isinstance(node.func, ast.Name) and file.name == "inference.py":
            continue  # the package's own wrapper, checked through its keras call
        safe = keyword(node, "safe_mode")
        assert isinstance(safe, ast.Constant) and safe.value is True, f"{file}:{node.lineno}"
    assert not list(calls("enable_unsafe_deserialization"))


def test_yaml_is_read_with_safe_loaders_only():
    assert not list(calls("unsafe_load")) and not list(calls("full_load"))
    for file, node in calls("load"):
        loader = keyword(node, "Loader")
        if loader is None:
            continue  # np.load, json.load: checked below
        assert ast.unparse(loader) in ("RecipeLoader", "_Loader"), f"{file}:{node.lineno}"
    for file, node in calls("load"):
        if ast.unparse(node.func) == "np.load":
            allow = keyword(node, "allow_pickle")
            assert isinstance(allow, ast.Constant) and allow.value is False, f"{file}:{node.lineno}"


def test_keras_is_pinned_past_the_safe_mode_fixes():
    """At least 3.13.2 (safe_mode fixes), below the next major version (issue 15)."""
    import keras

    text = (REPO / "pyproject.toml").read_text()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        assert '"keras>=3.13.2,<4"' in text
    else:
        assert "keras>=3.13.2,<4" in tomllib.loads(text)["project"]["dependencies"]
    assert tuple(int(p) for p in keras.__version__.split(".")[:3]) >= (3, 13, 2)


# -- a results folder with broken runs -------------------------------------------------------


def test_runs_and_compare_report_the_broken_runs(tmp_path, runner):
    results = tmp_path / "results"
    fake_run(results / "20260101-000000-x-0001")
    fake_run(results / "20260101-000001-x-0002", status="failed")
    crashed = fake_run(results / "20260101-000002-x-0003", status="running")
    info = json.loads((crashed / "run.json").read_text())
    (crashed / "run.json").write_text(json.dumps({**info, "pid": 2**22 + 7}))
    (fake_run(results / "20260101-000003-x-0004") / "run.json").write_text('{"status": "compl')
    (fake_run(results / "20260101-000004-x-0005") / "metrics.csv").write_text("task,metric\n")
    (fake_run(results / "20260101-000005-x-0006") / "recipe.yaml").write_bytes(b"\xff: [")

    listed = runner.invoke(cli, ["runs", "--results", str(results)])
    assert listed.exit_code == 0 and "Traceback" not in listed.output
    assert {"completed", "failed", "crashed"} <= set(listed.stdout.split())
    for run, why in [("0004", "run.json is truncated or not JSON"),
                     ("0005", "metrics.csv lacks the column(s) split, value"),
                     ("0006", "recipe.yaml cannot be read")]:
        assert f"Warning: skipped {results}/20260101-00000{int(run[-1]) - 1}-x-{run}: {why}" \
            in listed.stderr, listed.stderr

    compared = runner.invoke(cli, ["compare", "--results", str(results)])
    assert compared.exit_code == 0 and "Traceback" not in compared.output
    assert "2 run(s) not completed left out (crashed, failed)" in compared.stderr
    assert compared.stderr.count("Warning: skipped") == 3


def test_the_recipe_cache_follows_edits_and_survives_garbage(tmp_path, runner):
    results = tmp_path / "results"
    run = fake_run(results / "20260101-000000-x-0001")
    assert reader.scan_runs(results)[0].recipe["name"] == "x"
    assert (results / reader.RecipeCache.NAME).exists()
    (run / "recipe.yaml").write_text("name: edited\ntasks: {a: {type: binary, label: a}}\n")
    assert reader.scan_runs(results)[0].recipe["name"] == "edited"
    (results / reader.RecipeCache.NAME).write_text("{not json")
    assert reader.scan_runs(results)[0].recipe["name"] == "edited"
    listed = runner.invoke(cli, ["runs", "--results", str(results)])
    assert listed.exit_code == 0 and ".mtl-recipes" not in listed.output
