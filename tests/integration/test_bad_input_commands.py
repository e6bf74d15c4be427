"""A corpus of bad input to the commands that use, inspect and name runs: one clear line each.

Each case copies a tiny trained run into `tmp_path`, prepares what it needs (an existing
output, a broken run folder, a write that fails), runs one command in-process and asserts the
exit code (2: the command line is wrong; 1: a failure while working), the message, that no
"Traceback" appears, that no run is newly marked completed, and that nothing that existed
before was changed or lost. Standard output that cannot be written (`> /dev/full`, a closed
pipe) is tested through a real process.

Tests run as root here, so `chmod` does not stop a write: an unwritable folder is simulated
with a path whose parent is a file, or by making the write itself fail (monkeypatch).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE, make_table

LONG_NAME = "n" * 300


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny completed run (1 epoch), copied by each case before it is touched."""
    folder = tmp_path_factory.mktemp("commands")
    make_table().to_csv(folder / "table.csv", index=False)
    (folder / "recipe.yaml").write_text(TINY_RECIPE)
    outcome = CliRunner().invoke(cli, ["train", str(folder / "recipe.yaml"), "--results",
                                       str(folder / "results"), "--set", "training.epochs=1"])
    assert outcome.exit_code == 0, outcome.output
    [run] = [p for p in (folder / "results").iterdir() if p.is_dir()]
    return run


def double(x):
    """A named function, as a user's own Lambda layer would hold."""
    return x * 2


def lambda_model(path: Path) -> None:
    """A .keras file whose model holds a Lambda layer of a named function."""
    import keras

    inputs = keras.Input((1,), name="x1")
    outputs = keras.layers.Dense(3, activation="softmax", name="kind")(
        keras.layers.Lambda(double, name="twice")(inputs))
    keras.Model(inputs, outputs).save(path)


def fail_mkdir(target: str, error: int = errno.EACCES) -> Callable:
    """A patch: creating a folder named `target` fails as on a read-only or foreign folder."""

    def patch(monkeypatch, tmp: Path) -> None:
        real = Path.mkdir

        def mkdir(self, *args, **kwargs):
            if self.name == target:
                raise PermissionError(error, os.strerror(error), str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", mkdir)

    return patch


def fail_scan(exception: Exception) -> Callable:
    """A patch: reading the results folder raises what no command expects (a bug)."""

    def patch(monkeypatch, tmp: Path) -> None:
        from mtl_runner.results import reader

        def scan(*args, **kwargs):
            raise exception

        monkeypatch.setattr(reader, "scan_runs", scan)

    return patch


def existing_evaluation(name: str) -> Callable[[Path, Path], None]:
    """A setup: the run already has an evaluation called `name`."""

    def setup(tmp: Path, run: Path) -> None:
        (run / "evaluations").mkdir(exist_ok=True)
        (run / "evaluations" / f"{name}.csv").write_text("task,metric,split,value,n\n"
                                                         f"kind,accuracy,{name},0.5,24\n")
        info = json.loads((run / "run.json").read_text())
        info["evaluations"] = [{"name": name, "data": "earlier.csv", "rows": 24,
                                "at": "2026-01-01T00:00:00+00:00", "file": f"evaluations/{name}.csv"}]
        (run / "run.json").write_text(json.dumps(info))

    return setup


def files(**named: str | bytes) -> Callable[[Path, Path], None]:
    """A setup: files under tmp_path (`RUN/` in a name means inside the run folder)."""

    def setup(tmp: Path, run: Path) -> None:
        for name, content in named.items():
            path = run / name[4:] if name.startswith("RUN/") else tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def broken_run_json(tmp: Path, run: Path) -> None:
    bad = run.parent / "20260101-000000-tiny-bad0"
    shutil.copytree(run, bad)
    (bad / "run.json").write_text('{"status": "compl')


def lambda_in_run(tmp: Path, run: Path) -> None:
    lambda_model(run / "model.keras")


def savedmodel_exists(tmp: Path, run: Path) -> None:
    (run / "export" / "savedmodel" / "1").mkdir(parents=True)
    (run / "export" / "savedmodel" / "1" / "saved_model.pb").write_bytes(b"an earlier export")


@dataclasses.dataclass
class Case:
    """One bad command line.

    Attributes:
        id: the test id.
        args: the command and its arguments; `{run}` is the run's path, `{id}` its id,
            `{tmp}` tmp_path, `{results}` the results folder.
        expect: regular expressions the output must match.
        code: the expected exit code.
        setup: prepares files (tmp_path, run folder) before the command.
        patch: monkeypatches (monkeypatch, tmp_path) before the command.
        changes: files (relative to tmp_path) the command may change, e.g. a replaced output.
    """

    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    code: int = 2
    setup: Callable[[Path, Path], None] | None = None
    patch: Callable[[Any, Path], None] | None = None
    changes: tuple[str, ...] = ()


CASES = [
    # -- names, checked before any work ------------------------------------------------------
    Case("train-name-300-characters", ("train", "{tmp}/recipe.yaml", "--name", LONG_NAME),
         (r"--name must have 1 to 64 characters", r"\(300 characters\)", "shorter --name")),
    Case("train-name-with-a-slash", ("train", "{tmp}/recipe.yaml", "--name", "../escape"),
         (r"--name may hold only letters, digits", r"'\.\./escape'",)),
    Case("finetune-name-300-characters", ("finetune", "--data", "{tmp}/images", "--name", LONG_NAME),
         (r"--name must have 1 to 64 characters",)),
    Case("train-name-empty", ("train", "{tmp}/recipe.yaml", "--name", ""),
         (r"--name must have 1 to 64 characters. Received: ''",)),
    Case("evaluate-name-300-characters", ("evaluate", "{id}", "--data", "{tmp}/new.csv",
                                          "--name", LONG_NAME),
         (r"--name must have 1 to 64 characters",)),
    Case("evaluate-name-hidden-file", ("evaluate", "{id}", "--data", "{tmp}/new.csv", "--name", ".x"),
         (r"may not start with '\.'",)),
    Case("evaluate-default-name-from-a-file-with-spaces",
         ("evaluate", "{id}", "--data", "{tmp}/new data.csv"),
         (r"the evaluation name \(the --data file's name, 'new data.csv'; give --name\)",),
         setup=files(**{"new data.csv": make_table(24, 1).to_csv(index=False)})),
    Case("evaluate-name-is-a-training-split", ("evaluate", "{id}", "--data", "{tmp}/new.csv",
                                               "--name", "test"),
         (r"may not be a training split \(train, validation, test\)",)),

    # -- outputs that exist already: never replaced silently ---------------------------------
    Case("evaluate-same-name-twice", ("evaluate", "{id}", "--data", "{tmp}/new.csv", "--name", "new"),
         (r"already has an evaluation named 'new' \(of earlier.csv", "--overwrite"),
         setup=existing_evaluation("new")),
    Case("evaluate-output-exists", ("evaluate", "{id}", "--data", "{tmp}/new.csv",
                                    "-o", "{tmp}/metrics.json"),
         (r"--output .*metrics.json exists already; nothing was written", "--overwrite"),
         setup=files(**{"metrics.json": "[]"})),
    Case("predict-output-exists", ("predict", "{id}", "--data", "{tmp}/new.csv", "-o", "{tmp}/p.csv"),
         (r"--output .*p.csv exists already", "add --overwrite to replace it"),
         setup=files(**{"p.csv": "mine\n"})),
    Case("export-keras-sidecar-exists", ("export", "{id}", "--format", "keras", "-o", "{tmp}/m.keras"),
         (r"m\.mtl\.json exists already", "--overwrite"),
         setup=files(**{"m.mtl.json": '{"mine": true}'})),
    Case("export-savedmodel-exists", ("export", "{id}"),
         (r"export/savedmodel/1 exists already", "--overwrite"), setup=savedmodel_exists),
    Case("compare-output-exists", ("compare", "-o", "{tmp}/table.md"),
         (r"--output .*table.md exists already",), setup=files(**{"table.md": "mine"})),
    Case("compare-output-is-a-device", ("compare", "-o", "/dev/null", "--overwrite"),
         (r"--output /dev/null is not a regular file",)),
    Case("show-plot-exists", ("show", "{id}", "--plot", "{tmp}/run.png"),
         (r"--plot .*run.png exists already",), setup=files(**{"run.png": "mine"})),

    # -- folders that cannot be written --------------------------------------------------------
    Case("predict-output-under-a-file", ("predict", "{id}", "--data", "{tmp}/new.csv",
                                         "-o", "{tmp}/new.csv/p.csv"),
         (r"new.csv is a file, not a folder",)),
    Case("predict-output-folder-missing", ("predict", "{id}", "--data", "{tmp}/new.csv",
                                           "-o", "{tmp}/nowhere/p.csv"),
         (r"the folder .*nowhere does not exist",)),
    Case("export-output-under-a-file", ("export", "{id}", "-o", "{tmp}/new.csv/model"),
         (r"new.csv is a file, not a folder",)),
    Case("evaluate-run-folder-not-writable", ("evaluate", "{id}", "--data", "{tmp}/new.csv"),
         (r"cannot write the evaluation into .*evaluations: Permission denied", "--no-save"),
         code=1, patch=fail_mkdir("evaluations")),
    Case("evaluate-evaluations-is-a-file", ("evaluate", "{id}", "--data", "{tmp}/new.csv"),
         (r"cannot write the evaluation into .*evaluations",), code=1,
         setup=files(**{"RUN/evaluations": "not a folder"})),
    Case("export-folder-not-writable", ("export", "{id}"),
         (r"cannot access .*export.*: Permission denied", "permissions"), code=1,
         patch=fail_mkdir("savedmodel")),

    # -- run folders that cannot be used -------------------------------------------------------
    Case("predict-lambda-model", ("predict", "{id}", "--data", "{tmp}/new.csv"),
         (r"holds a Lambda 'twice' layer", "safe mode refuses"), code=1, setup=lambda_in_run),
    Case("export-lambda-model", ("export", "{id}"),
         (r"holds a Lambda 'twice' layer", "safe mode refuses"), code=1, setup=lambda_in_run),
    Case("evaluate-lambda-model", ("evaluate", "{id}", "--data", "{tmp}/new.csv"),
         (r"holds a Lambda 'twice' layer",), code=1, setup=lambda_in_run),
    Case("compare-names-an-unreadable-run", ("compare", "20260101-000000-tiny-bad0", "{id}"),
         (r"cannot read .*20260101-000000-tiny-bad0: run.json is truncated",), code=1,
         setup=broken_run_json),
    Case("compare-names-a-run-without-metrics", ("compare", "{id}"),
         (r"cannot read .*: metrics.csv is missing although the run is completed",), code=1,
         setup=lambda tmp, run: (run / "metrics.csv").unlink()),

    # -- bugs: one line, how to report, how to see the traceback --------------------------------
    Case("runs-unexpected-exception", ("runs",),
         (r"mtl runs: unexpected KeyError: 'boom'", "bug in mtl", "MTL_DEBUG=1"), code=1,
         patch=fail_scan(KeyError("boom"))),
    Case("compare-unexpected-permission-error", ("compare",),
         (r"mtl compare: cannot access /x/y: Permission denied",), code=1,
         patch=fail_scan(PermissionError(errno.EACCES, "Permission denied", "/x/y"))),
]


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def completed(results: Path) -> set[str]:
    done = set()
    for info in results.glob("*/run.json"):
        try:
            if json.loads(info.read_text()).get("status") == "completed":
                done.add(info.parent.name)
        except ValueError:
            pass
    return done


def prepare(case: Case, tmp_path: Path, trained: Path) -> tuple[Path, list[str]]:
    results = tmp_path / "results"
    run = results / trained.name
    shutil.copytree(trained, run)
    make_table().to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(TINY_RECIPE)
    make_table(rows=24, seed=1).to_csv(tmp_path / "new.csv", index=False)
    if case.setup:
        case.setup(tmp_path, run)
    values = {"{run}": str(run), "{id}": run.name, "{tmp}": str(tmp_path), "{results}": str(results)}
    args = []
    for arg in case.args:
        for key, value in values.items():
            arg = arg.replace(key, value)
        args.append(arg)
    return run, [*args, "--results", str(results)]


def test_the_corpus_is_large_and_named_uniquely():
    ids = [case.id for case in CASES]
    assert len(ids) >= 12 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_command_lines_are_refused_clearly(case: Case, trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run, args = prepare(case, tmp_path, trained)
    before, done_before = snapshot(tmp_path), completed(tmp_path / "results")
    if case.patch:
        case.patch(monkeypatch, tmp_path)
    outcome = CliRunner().invoke(cli, args)
    monkeypatch.undo()
    output = outcome.output
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(outcome.exception))
    assert "Traceback" not in output, output
    assert outcome.exit_code == case.code, f"exit code {outcome.exit_code}, expected {case.code}:\n{output}"
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, f"not one 'Error: ' line:\n{output}"
    for pattern in case.expect:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"
    assert completed(tmp_path / "results") <= done_before  # nothing newly marked completed
    after = snapshot(tmp_path)
    lost = {name for name, digest in before.items()
            if after.get(name) != digest and name not in case.changes}
    assert not lost, f"changed or lost: {sorted(lost)}"


def test_overwrite_replaces_an_evaluation_and_an_export_sidecar(trained, tmp_path, monkeypatch):
    case = Case("overwrite", ("evaluate", "{id}", "--data", "{tmp}/new.csv", "--name", "new",
                              "--overwrite"), (), code=0, setup=existing_evaluation("new"))
    run, args = prepare(case, tmp_path, trained)
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    [record] = json.loads((run / "run.json").read_text())["evaluations"]
    assert record["data"] == str(tmp_path / "new.csv") and record["rows"] == 24
    assert "0.5," not in (run / "evaluations" / "new.csv").read_text()

    (tmp_path / "m.mtl.json").write_text("{}")
    exported = CliRunner().invoke(cli, ["export", run.name, "--format", "keras", "-o",
                                        str(tmp_path / "m.keras"), "--overwrite",
                                        "--results", str(run.parent)])
    assert exported.exit_code == 0, exported.output
    assert json.loads((tmp_path / "m.mtl.json").read_text())["run"] == run.name


def test_debug_variable_shows_the_traceback(monkeypatch, tmp_path):
    fail_scan(KeyError("boom"))(monkeypatch, tmp_path)
    monkeypatch.setenv("MTL_DEBUG", "1")
    outcome = CliRunner().invoke(cli, ["runs", "--results", str(tmp_path)])
    assert isinstance(outcome.exception, KeyError)  # raised as is: python prints the traceback


def mtl_process(*args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mtl_runner", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
                            text=True, **options)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [("runs",), ("show", "RUN"), ("compare", "--format", "json"),
                                  ("--help",), ("runs", "--help")])
def test_a_full_standard_output_is_one_line_and_exit_1(trained, args):
    args = tuple(trained.name if a == "RUN" else a for a in args)
    with open("/dev/full", "w") as full:
        process = mtl_process(*args, "--results", str(trained.parent), stdout=full) \
            if "--help" not in args else mtl_process(*args, stdout=full)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.strip().splitlines() == [
        line for line in stderr.strip().splitlines() if line.startswith("Error: ")]
    assert "cannot write to standard output: No space left on device" in stderr


def test_a_closed_pipe_ends_quietly(trained, tmp_path):
    results = tmp_path / "results"
    for i in range(400):  # more JSON than a pipe holds
        shutil.copytree(trained, results / f"20260101-{i:06d}-tiny-aaaa", ignore=shutil.ignore_patterns(
            "model.keras", "checkpoints", "tb", "*.h5"))
    process = mtl_process("runs", "--format", "json", "--results", str(results),
                          stdout=subprocess.PIPE)
    assert process.stdout.read(1) == "["
    process.stdout.close()  # as `| head -c 1` does
    stderr = process.stderr.read()
    process.wait(timeout=120)
    assert process.returncode in (0, 1)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_training_into_a_full_standard_output_completes_the_run_and_exits_1(tmp_path):
    make_table().to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(TINY_RECIPE)
    with open("/dev/full", "w") as full:
        process = mtl_process("train", str(tmp_path / "recipe.yaml"), "--results",
                              str(tmp_path / "results"), "--set", "training.epochs=1", stdout=full)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    [run] = list((tmp_path / "results").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert "Warning: cannot write to standard output (No space left on device)" in stderr
    assert f"Error: run {run.name} completed" in stderr and "could not be written" in stderr
