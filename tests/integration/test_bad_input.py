"""A corpus of bad input: every case is refused with one clear line, never a traceback.

Each case writes a recipe (and any data files it needs) into `tmp_path`, runs `mtl train`
(or `validate`) and asserts the exit code (2: the recipe or the command line is wrong; 1: the
run failed), that the message names the file, line or key and says what to do, that no
"Traceback" appears, and that no run directory under the results folder is marked completed.

Most cases run in-process with click's CliRunner; `SUBPROCESS_CASES` also go through a real
`python -m mtl_runner` process, as a user would run them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE, make_table

Files = dict[str, Any]  # name -> text, bytes, or a function(path) that writes it


def tiny(changes: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> str:
    """TINY_RECIPE with dotted keys set (or removed), dumped in its own key order."""
    data = yaml.safe_load(TINY_RECIPE)
    for dotted, value in (changes or {}).items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    for dotted in drop:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line of `text` holding `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the recipe")


def table_with(**columns: Any) -> Callable[[Path], None]:
    """A writer of table.csv: the tiny table with some columns replaced or added."""

    def write(path: Path) -> None:
        frame = make_table()
        for name, values in columns.items():
            frame[name] = values(frame) if callable(values) else values
        frame.to_csv(path, index=False)

    return write


def png(path: Path, value: int = 50, size: tuple[int, int] = (10, 10)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def image_folder(classes: dict[str, int], broken: str | None = None) -> Callable[[Path], None]:
    """A writer of an image_dir folder: `classes` maps class name → number of images."""

    def write(path: Path) -> None:
        for name, count in classes.items():
            for i in range(count):
                png(path / name / f"{i}.png", value=20 * i)
        if broken:
            (path / broken).write_bytes(b"\x89PNG\r\n\x1a\n but not really a png")

    return write


IMAGE_RECIPE = """\
name: pictures
data:
  source: image_dir
  path: images
  image: {size: 8, on_error: error}
tasks:
  label: {type: classification, label: label}
model:
  trunk: {type: shared_bottom, units: [4]}
  heads: {units: []}
training: {epochs: 1, batch_size: 8, early_stopping: null}
seed: 0
"""

MALFORMED = "name: tiny\ndata:\n  source: csv\n  path: [table.csv\ntasks: {}\n"
TABBED = "name: tiny\ndata:\n\tsource: csv\n\tpath: table.csv\n"
DUPLICATE = TINY_RECIPE + "seed: 1\n"
WRONG_TOP = TINY_RECIPE.replace("seed: 0", "sed: 0")
PWNED = "pwned.txt"


@dataclasses.dataclass
class Case:
    """One bad input.

    Attributes:
        id: the test id.
        recipe: the recipe file's content (text or bytes); None: no recipe file is written.
        expect: regular expressions the output must match (case-insensitive); `{recipe}` is
            replaced by the recipe's path.
        code: the expected exit code.
        command: `train` or `validate`.
        args: more command-line arguments; `{tmp}` is replaced by tmp_path.
        files: more files next to the recipe.
        xfail: why the case is expected to fail today (the module at fault is not ours to edit).
    """

    id: str
    recipe: str | bytes | None
    expect: tuple[str, ...]
    code: int = 2
    command: str = "train"
    args: tuple[str, ...] = ()
    files: Files = dataclasses.field(default_factory=dict)
    xfail: str | None = None


def at(text: str, needle: str, key: str) -> str:
    """The pattern of `{recipe}:LINE: key` with the line where `needle` is."""
    return rf"{{recipe}}:{line_of(text, needle)}: {re.escape(key)}"


CASES = [
    # -- the file itself ------------------------------------------------------------------------
    Case("malformed-yaml", MALFORMED, (r"{recipe}:\d+: invalid YAML", "indentation and the quoting")),
    Case("tabs", TABBED, (r"{recipe}:3: invalid YAML", "spaces, not tabs")),
    Case("duplicate-key", DUPLICATE, (rf"{{recipe}}:{DUPLICATE.count(chr(10))}: seed: duplicate key",
                                      "may appear once")),
    Case("empty-file", "", ("{recipe}: the recipe is empty", "quickstart.yaml")),
    Case("only-comments", "# nothing here\n\n", ("{recipe}: the recipe is empty",)),
    Case("list-not-mapping", "- name: tiny\n- tasks: {}\n",
         ("{recipe}:1: a recipe is a mapping", "Received: list")),
    Case("scalar-not-mapping", "just some words\n", ("{recipe}:1: a recipe is a mapping", "str")),
    Case("50-megabyte-recipe", b"name: tiny\n" + b"# padding padding padding\n" * 2_000_000,
         ("{recipe}: the recipe is 52,000,011 bytes", "limited to 1,000,000", "data file")),
    Case("not-utf8", b"name: tiny\ndescription: caf\xe9\n", ("{recipe}:2: .*not valid UTF-8",
                                                             "Save the recipe as UTF-8")),
    Case("utf16-with-bom", "name: tiny\n".encode("utf-16"), ("{recipe}:1: .*not valid UTF-8",)),
    Case("python-object-apply", f"!!python/object/apply:os.system ['touch {PWNED}']\n",
         (r"{recipe}:1: invalid YAML", "tags that build objects are refused", "Remove the '!!' tag")),
    Case("python-object-apply-nested",
         TINY_RECIPE + f"description: !!python/object/apply:os.system ['touch {PWNED}']\n",
         (rf"{{recipe}}:{TINY_RECIPE.count(chr(10)) + 1}: invalid YAML", "refused")),
    Case("python-name-tag", TINY_RECIPE.replace("seed: 0", "seed: !!python/name:os.system"),
         ("invalid YAML", "refused")),
    Case("recipe-not-found", None, ("{recipe}: file not found", "Check the path")),
    Case("recipe-is-a-folder", None, ("is a directory",), args=("--results", "{tmp}/results"),
         files={"recipe.yaml": lambda p: p.mkdir()}),

    # -- unknown keys, at every level ------------------------------------------------------------
    Case("unknown-top-level-key", WRONG_TOP,
         (at(WRONG_TOP, "sed:", "sed") + ": unknown key", "Did you mean 'seed'")),
    Case("unknown-data-key", tiny({"data.pth": "x.csv"}),
         (r"{recipe}:\d+: data.pth: unknown key", "Did you mean 'path'")),
    Case("unknown-split-key", tiny({"data.split.valdation": 0.2}),
         (r"{recipe}:\d+: data.split.valdation: unknown key", "Did you mean 'validation'")),
    Case("unknown-task-key", tiny({"tasks.kind.lable": "kind"}),
         (r"{recipe}:\d+: tasks.kind.lable: unknown key", "Did you mean 'label'")),
    Case("unknown-trunk-key", tiny({"model.trunk.unit": [8]}),
         (r"{recipe}:\d+: model.trunk.unit: unknown key", "Did you mean 'units'")),
    Case("unknown-heads-key", tiny({"model.heads.dropuot": 0.1}),
         (r"{recipe}:\d+: model.heads.dropuot: unknown key", "Did you mean 'dropout'")),
    Case("unknown-weighting-key", tiny({"weighting": {"name": "dwa", "temprature": 2.0}}),
         (r"{recipe}:\d+: weighting.temprature: unknown key", "Did you mean 'temperature'")),
    Case("unknown-training-key", tiny({"training.bach_size": 8}),
         (r"{recipe}:\d+: training.bach_size: unknown key", "Did you mean 'batch_size'")),
    Case("unknown-optimizer-key", tiny({"training.optimizer": {"lr": 0.1}}),
         (r"{recipe}:\d+: training.optimizer.lr: unknown key", "learning_rate")),
    Case("unknown-early-stopping-key", tiny({"training.early_stopping": {"patiance": 3}}),
         (r"{recipe}:\d+: training.early_stopping.patiance: unknown key", "Did you mean 'patience'")),
    Case("unknown-key-from-set", TINY_RECIPE, (r"--set: training.epoch: unknown key",
                                               "Did you mean 'epochs'"),
         args=("--set", "training.epoch=3")),

    # -- wrong types -----------------------------------------------------------------------------
    Case("epochs-not-a-number", tiny({"training.epochs": "ten"}),
         (r"{recipe}:\d+: training.epochs: .*integer", "Received: 'ten'")),
    Case("units-not-a-list", tiny({"model.trunk.units": "big"}),
         (r"{recipe}:\d+: model.trunk.units", "Received: 'big'")),
    Case("tasks-is-a-list", tiny({"tasks": ["kind", "flag"]}), (r"{recipe}:\d+: tasks: .*dictionary",)),
    Case("exclude-not-a-list", tiny({"data.exclude": 5}), (r"{recipe}:\d+: data.exclude: .*list",)),
    Case("seed-is-a-list", tiny({"seed": [1]}), (r"{recipe}:\d+: seed: .*integer",)),
    Case("data-is-a-string", tiny({"data": "table.csv"}), (r"{recipe}:\d+: data: .*",)),
    Case("set-without-equals", TINY_RECIPE, ("--set: an override is written key=value",
                                             "Example: --set training.epochs=5"),
         args=("--set", "training.epochs")),

    # -- values out of range ---------------------------------------------------------------------
    Case("negative-epochs", tiny({"training.epochs": -1}),
         (r"{recipe}:\d+: training.epochs: .*greater than or equal to 1", "Received: -1")),
    Case("negative-epochs-from-set", TINY_RECIPE, (r"--set: training.epochs: .*greater than",),
         args=("--set", "training.epochs=-5")),
    Case("learning-rate-zero", tiny({"training.optimizer": {"learning_rate": 0}}),
         (r"{recipe}:\d+: training.optimizer.learning_rate: .*greater than 0", "Received: 0")),
    Case("dropout-1.5", tiny({"model.trunk.dropout": 1.5}),
         (r"{recipe}:\d+: model.trunk.dropout: .*less than 1", "Received: 1.5")),
    Case("batch-size-zero", tiny({"training.batch_size": 0}),
         (r"{recipe}:\d+: training.batch_size: .*greater than or equal to 1",)),
    Case("splits-leave-no-training-rows", tiny({"data.split": {"validation": 0.6, "test": 0.6}}),
         (r"{recipe}:\d+: data.split",)),
    Case("zero-tasks", tiny({"tasks": {}}), (r"{recipe}:\d+: tasks: .*at least one task",
                                             "type: classification")),
    Case("negative-task-weight", tiny({"tasks.flag.weight": -1}),
         (r"{recipe}:\d+: tasks.flag.weight: .*greater than or equal to 0",)),
    Case("image-size-too-small", IMAGE_RECIPE.replace("size: 8", "size: 2"),
         (r"{recipe}:5: data.image: image sides must be between 8 and 4096",),
         files={"images": image_folder({"a": 2, "b": 2})}),
    Case("10000-class-label-on-10-rows", tiny(drop=("tasks.flag", "tasks.target")),
         (r"{recipe}:\d+: tasks.kind.label: column 'kind' has 10 classes in 10 rows",
          "regression target or an identifier"),
         files={"table.csv": lambda p: make_table(10).assign(
             kind=np.random.default_rng(0).choice(10_000, 10, replace=False)).to_csv(p, index=False)}),

    # -- unknown names ---------------------------------------------------------------------------
    Case("unknown-trunk", tiny({"model.trunk.type": "shared_botom"}),
         (r"{recipe}:\d+: model.trunk.type: unknown value", "Did you mean 'shared_bottom'")),
    Case("unknown-weighting", tiny({"weighting": {"name": "uncertanty"}}),
         (r"{recipe}:\d+: weighting.name: unknown value", "Did you mean 'uncertainty'")),
    Case("unknown-backbone", IMAGE_RECIPE.replace("model:\n", "model:\n  backbone: {name: resnet5, "
                                                  "weights: none}\n"),
         (r"{recipe}:\d+: model.backbone.name: unknown value", "Did you mean 'resnet50'")),
    Case("unknown-dataset", tiny({"data": {"source": "builtin", "name": "pengiuns"}}),
         (r"{recipe}:\d+: data.name: .*pengiuns", "Did you mean 'penguins'")),
    Case("unknown-source", tiny({"data.source": "xls"}),
         (r"{recipe}:\d+: data.source: unknown value", "Choose one of: csv")),
    Case("unknown-task-type", tiny({"tasks.flag.type": "binry"}),
         (r"{recipe}:\d+: tasks.flag.type: unknown value", "Did you mean 'binary'")),
    Case("unknown-loss", tiny({"tasks.target.loss": "hubber"}),
         (r"{recipe}:\d+: tasks.target.loss: unknown loss", "Did you mean 'huber'")),
    Case("unknown-optimizer", tiny({"training.optimizer": {"name": "adamm"}}),
         (r"{recipe}:\d+: training.optimizer.name: unknown value", "Did you mean 'adam'")),
    Case("unknown-early-stopping-monitor", tiny({"training.early_stopping": {"monitor": "val_los"}}),
         (r"{recipe}:\d+: training.early_stopping.monitor: not a metric", "Did you mean 'val_loss'")),

    # -- the data --------------------------------------------------------------------------------
    Case("label-not-in-data", tiny({"tasks.kind.label": "knd"}),
         (r"{recipe}:\d+: tasks.kind.label: label column 'knd' is not a column", "Did you mean 'kind'")),
    Case("string-regression-label", tiny(), (r"{recipe}:\d+: tasks.target.label: a regression label "
                                             "must be numeric", "holds 64 non-numeric value",
                                             r"(?s)^(?!.*'heavy')"),  # cells are never quoted (issue 13)
         files={"table.csv": table_with(target=lambda f: ["heavy"] * len(f))}),
    Case("inf-in-features", tiny(), (r"{recipe}:\d+: data: feature column 'x1' holds Inf",
                                     "drop the column with (data.)?exclude"),
         files={"table.csv": table_with(x1=lambda f: f["x1"].where(f.index != 7, np.inf))}),
    Case("nan-in-features-with-missing-error", tiny({"data.missing": "error"}),
         (r"{recipe}:\d+: data.missing: feature columns have missing values: x2",
          "missing: impute")),
    Case("inf-in-regression-label", tiny(), (r"{recipe}:\d+: tasks.target.label: column 'target' "
                                             "holds Inf",),
         files={"table.csv": table_with(target=lambda f: f["target"].where(f.index != 2, -np.inf))}),
    Case("all-nan-regression-label", tiny(), (r"{recipe}:\d+: tasks.target.label: column 'target' "
                                              "has fewer than 2",),
         files={"table.csv": table_with(target=np.nan)}),
    Case("all-nan-classification-label", tiny(), (r"{recipe}:\d+: tasks.kind.label: .*at least 2 "
                                                  "classes",),
         files={"table.csv": table_with(kind=np.nan)}),
    Case("one-class-label", tiny(), (r"{recipe}:\d+: tasks.kind.label: .*at least 2 classes",),
         files={"table.csv": table_with(kind="a")}),
    Case("binary-label-with-3-values", tiny({"tasks.flag.label": "kind"}),
         (r"{recipe}:\d+: tasks.flag.label: a binary label needs exactly 2",)),
    Case("empty-data-file", tiny(), (r"{recipe}:\d+: data.path: .*table.csv: the file is empty",
                                     "needs a header row"),
         files={"table.csv": b""}),
    Case("ragged-csv", tiny(), (r"{recipe}:\d+: data.path: .*table.csv: cannot parse as csv: line 3 has 10 fields, "
                                "but the header has 7", "Fix that row"),
         files={"table.csv": lambda p: p.write_text(
             make_table().to_csv(index=False).replace("\n", ",1,2,3\n", 3).replace(",1,2,3", "", 2))}),
    Case("header-only-csv", tiny(), (r"{recipe}:\d+: data.path: .*no rows \(only a header\?\)",
                                     "at least one data row"),
         files={"table.csv": "x1,x2,colour,kind,flag,target,tags\n"}),
    Case("data-file-not-found", tiny({"data.path": "tabel.csv"}),
         (r"{recipe}:\d+: data.path: data file not found: .*tabel.csv", "relative to the recipe")),
    Case("data-not-utf8", tiny(), (r"{recipe}:\d+: data.path: .*not UTF-8", "Save the table as UTF-8"),
         files={"table.csv": b"x1,kind,flag,target\n1,\xe9\xe9,0,1\n2,b,1,2\n"}),
    Case("npz-with-pickled-objects", tiny({"data.source": "npz", "data.path": "table.npz"}),
         (r"{recipe}:\d+: data.path: .*table.npz: cannot read as npz", "objects are refused"),
         files={"table.npz": lambda p: np.savez(p, x1=np.array([{"a": 1}] * 4, dtype=object),
                                                 kind=np.array(["a", "b"] * 2))}),
    Case("parquet-that-is-not", tiny({"data.source": "parquet", "data.path": "table.parquet"}),
         (r"{recipe}:\d+: data.path: .*table.parquet: cannot read as parquet",
          "valid parquet file"),
         files={"table.parquet": b"PAR1 this is not parquet"}),
    Case("image-folder-with-one-class", IMAGE_RECIPE, (r"{recipe}:\d+: tasks.label.label: .*at "
                                                       "least 2 classes",),
         files={"images": image_folder({"cat": 4})}),
    Case("image-folder-without-images", IMAGE_RECIPE, (r"{recipe}:\d+: data.path: .*no images found",),
         files={"images": lambda p: (p / "cat").mkdir(parents=True)}),
    Case("unreadable-image", IMAGE_RECIPE, ("cannot read .*broken.png|broken.png",
                                            "on_error: skip|data.image.on_error"),
         code=1, files={"images": image_folder({"a": 4, "b": 4}, broken="a/broken.png")}),

    # -- the command line ------------------------------------------------------------------------
    Case("name-with-dot-dot", TINY_RECIPE, ("--name may hold only letters", r"'\.\./escape'"),
         args=("--name", "../escape")),
    Case("name-absolute", TINY_RECIPE, ("--name may hold only letters",), args=("--name", "/tmp/x")),
    Case("results-is-a-file", TINY_RECIPE, ("results.*(file|directory)",),
         args=("--results", "{tmp}/table.csv")),
]

SUBPROCESS_CASES = ("malformed-yaml", "python-object-apply", "not-utf8", "ragged-csv",
                    "list-not-mapping")


def prepare(case: Case, tmp_path: Path) -> tuple[Path, list[str]]:
    """Writes the case's files; returns the recipe path and the command's arguments."""
    make_table().to_csv(tmp_path / "table.csv", index=False)
    for name, content in case.files.items():
        path = tmp_path / name
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    recipe = tmp_path / "recipe.yaml"
    if isinstance(case.recipe, bytes):
        recipe.write_bytes(case.recipe)
    elif isinstance(case.recipe, str):
        recipe.write_text(case.recipe)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args]
    if case.command == "train" and "--results" not in args:
        args += ["--results", str(tmp_path / "results")]
    return recipe, [case.command, str(recipe), *args]


def check(case: Case, tmp_path: Path, recipe: Path, exit_code: int, output: str) -> None:
    assert "Traceback" not in output, output
    assert exit_code == case.code, f"exit code {exit_code}, expected {case.code}:\n{output}"
    assert output.strip(), "no message"
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert errors, f"no 'Error: ' line:\n{output}"
    for pattern in case.expect:
        pattern = pattern.replace("{recipe}", re.escape(str(recipe)))
        assert re.search(pattern, output, re.IGNORECASE), f"{pattern!r} not in:\n{output}"
    for info in (tmp_path / "results").glob("*/run.json"):
        assert json.loads(info.read_text())["status"] != "completed", info
    assert not (tmp_path / PWNED).exists() and not Path(PWNED).exists()


def params(cases: list[Case]) -> list:
    marks = lambda c: [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []  # noqa: E731
    return [pytest.param(c, id=c.id, marks=marks(c)) for c in cases]


def test_the_corpus_is_large_and_named_uniquely():
    ids = [case.id for case in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input_is_refused_clearly(case: Case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a tag that ran code would write pwned.txt here
    from click.testing import CliRunner

    recipe, args = prepare(case, tmp_path)
    outcome = CliRunner().invoke(cli, args)
    output = outcome.output  # stdout and stderr, interleaved
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        import traceback

        output += "".join(traceback.format_exception(outcome.exception))
    check(case, tmp_path, recipe, outcome.exit_code, output)


@pytest.mark.parametrize("case", params([c for c in CASES if c.id in SUBPROCESS_CASES]))
def test_bad_input_is_refused_clearly_by_a_real_process(case: Case, tmp_path):
    recipe, args = prepare(case, tmp_path)
    done = subprocess.run([sys.executable, "-m", "mtl_runner", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                               "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.stdout == "" or "Error" not in done.stdout  # errors go to stderr
    check(case, tmp_path, recipe, done.returncode, done.stdout + done.stderr)
