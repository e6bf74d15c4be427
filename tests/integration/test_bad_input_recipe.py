"""Bad recipes that used to pass `mtl validate` and fail later, hang, or say too much (issue 13).

The same corpus shape as `test_bad_input.py`: each case asserts the exit code, a located
`FILE:LINE: key` message with what to do, no traceback, and no run marked completed. Cases
here also assert what a message must never hold (`forbid`): file contents, cell values.
Reading cases run under an alarm, so a read that blocks fails instead of hanging the suite.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtl_runner.cli import cli
from tests.conftest import REPO, TINY_RECIPE, make_table
from tests.integration.test_bad_input import Case, at, check, prepare, table_with, tiny

DEEP = "name: tiny\ndescription: " + "[" * 5000 + "]" * 5000 + "\n"
LAUGHS = "name: tiny\n" + "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
RECURSIVE = TINY_RECIPE + "description: &me [*me]\n"
SECRET = "hunter2-do-not-print"


@dataclasses.dataclass
class RecipeCase(Case):
    """A `Case` with values the output must not hold and variables for the process.

    Attributes:
        forbid: regular expressions that must not match the output (case-insensitive).
        env: environment variables set while the case runs.
        process: run through a real `python -m mtl_runner` (for what /proc/self/environ holds).
    """

    forbid: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    process: bool = False


def fifo(path: Path) -> None:
    os.mkfifo(path)


def wide_table(path: Path) -> None:
    extra = pd.DataFrame({f"extra_column_with_a_rather_long_name_number_{i:03d}_" + "z" * 60: 0.0
                          for i in range(300)}, index=range(64))
    pd.concat([make_table(), extra], axis=1).to_csv(path, index=False)


def renamed(**names: str):
    """A writer of table.csv with columns renamed."""

    def write(path: Path) -> None:
        make_table().rename(columns=names).to_csv(path, index=False)

    return write


TASK_X1 = tiny({"tasks.x1": {"type": "regression", "label": "target"}})
TWO_SEEDS = tiny({"seed": 2**40})
TASKS = {"kind": {"type": "classification", "label": "kind"}}


def tasks(**more) -> str:
    return tiny({"tasks": {**TASKS, **more}})


def named(task: str) -> str:
    return tasks(**{task: {"type": "regression", "label": "target"}})


NAMED_LOSS, NAMED_VAL_LOSS = named("loss"), named("val_loss")
NAMED_WEIGHT, NAMED_WEIGHT_LOSS = named("weight"), named("weight_loss")
NAMED_GRAD, NAMED_FEATURES = named("grad_cosine"), named("features")
MACRO = tasks(a={"type": "classification", "label": "kind"},
              a_macro={"type": "binary", "label": "flag", "metrics": ["f1"]})
TWICE = tiny({"tasks.kind.metrics": ["accuracy", "accuracy"]})
BOOL_UNITS = tiny({"model.heads.units": [True]})
INF_WEIGHT = tiny({"tasks.kind.weight": float("inf")})

CASES = [
    # -- item 7: only regular files are read, within limits -------------------------------------
    RecipeCase("recipe-is-dev-zero", None, (r"{recipe}: the recipe is a character device",
                                            "only regular files"), command="validate",
               files={"recipe.yaml": lambda p: p.symlink_to("/dev/zero")}),
    RecipeCase("recipe-is-a-fifo", None, (r"{recipe}: the recipe is a FIFO", "regular file"),
               command="validate", files={"recipe.yaml": fifo}),
    RecipeCase("recipe-is-a-fifo-train", None, (r"{recipe}: the recipe is a FIFO",),
               files={"recipe.yaml": fifo}),
    RecipeCase("data-path-is-a-fifo", tiny({"data.path": "pipe.csv"}),
               (r"{recipe}:\d+: data.path: .*pipe.csv: the data file is a FIFO",),
               command="validate", files={"pipe.csv": fifo}),
    RecipeCase("data-path-is-dev-zero", tiny({"data.path": "/dev/zero"}),
               (r"{recipe}:\d+: data.path: /dev/zero: the data file is a character device",),
               command="validate"),
    RecipeCase("task-data-path-is-a-fifo",
               tiny({"tasks.flag.data": {"source": "csv", "path": "pipe.csv"}}),
               (r"{recipe}:\d+: tasks.flag.data.path: .*the data file is a FIFO",),
               command="validate", files={"pipe.csv": fifo}),
    RecipeCase("data-file-over-the-limit", tiny(), (r"data.path: .*table.csv: the data file is "
                                                    r"[\d,]+ bytes; data files are limited to 100",
                                                    "MTL_MAX_DATA_BYTES"),
               env={"MTL_MAX_DATA_BYTES": "100"}),
    RecipeCase("5000-nested-brackets", DEEP, (r"{recipe}:2: the YAML nests more than 64 levels",),
               command="validate", forbid=("RecursionError",)),
    RecipeCase("billion-laughs", LAUGHS, (r"{recipe}:\d+: once aliases are expanded, the YAML holds "
                                          "more than 100,000 values", "fewer aliases"),
               command="validate"),
    RecipeCase("recursive-alias", RECURSIVE, (r"{recipe}:\d+: an alias refers to a node that "
                                              "contains it",), command="validate"),
    RecipeCase("deep-set-value", TINY_RECIPE, ("--set: description: the YAML nests more than 64",),
               command="validate", args=("--set", "description=" + "[" * 5000)),

    # -- item 3: values validate accepted and training refused ---------------------------------
    RecipeCase("trunk-units-zero", tiny({"model.trunk.units": [0]}),
               (at(tiny({"model.trunk.units": [0]}), "units: [0]", "model.trunk.units.0") + ": .*greater "
                "than 0",), command="validate"),
    RecipeCase("trunk-units-negative", tiny({"model.trunk.units": [8, -4]}),
               (r"{recipe}:\d+: model.trunk.units.1: .*greater than 0",)),
    RecipeCase("epochs-true-from-set", TINY_RECIPE,
               ("--set: training.epochs: a number is expected, not a boolean", "Received: true"),
               args=("--set", "training.epochs=true")),
    RecipeCase("batch-size-true-in-yaml", tiny({"training.batch_size": True}),
               (at(tiny({"training.batch_size": True}), "batch_size", "training.batch_size")
                + ": a number is expected, not a boolean",), command="validate"),
    RecipeCase("head-units-true", BOOL_UNITS, (at(BOOL_UNITS, "units: [true]", "model.heads.units.0")
                                               + ": a number is expected, not a boolean",)),
    RecipeCase("task-weight-inf", INF_WEIGHT, (at(INF_WEIGHT, "weight:", "tasks.kind.weight")
                                               + ": a finite number is expected",)),
    RecipeCase("seed-beyond-32-bits", TWO_SEEDS, (at(TWO_SEEDS, "seed:", "seed")
                                                  + ": .*less than or equal to 4294967295",)),
    RecipeCase("inputs-collide-after-sanitising", tiny(),
               (r"{recipe}:\d+: data: feature columns 'x 1', 'x_1' all become the model input 'x_1'",
                "exclude"),
               command="validate", files={"table.csv": table_with(**{"x 1": lambda f: f["x1"],
                                                                      "x_1": lambda f: f["x2"]})}),
    RecipeCase("inputs-collide-with-digit-prefix", tiny(),
               (r"feature columns '1x', 'f_1x' all become the model input 'f_1x'",),
               files={"table.csv": table_with(**{"1x": 1.0, "f_1x": 2.0})}),
    RecipeCase("task-named-like-a-feature", TASK_X1,
               (at(TASK_X1, "x1:", "tasks.x1") + ": feature column 'x1' becomes the model input 'x1'",),
               command="validate"),
    RecipeCase("regression-label-1e302", tiny(),
               (r"{recipe}:\d+: tasks.target.label: regression label column 'target' holds 1 "
                r"value\(s\) beyond ±1e\+15", "Rescale"),
               files={"table.csv": table_with(target=lambda f: np.where(f.index == 7, 1e302,
                                                                        f["target"]))},
               forbid=("1e\\+302", "1e302")),
    RecipeCase("feature-value-1e300", tiny(),
               (r"{recipe}:\d+: data: feature column 'x1' holds 1 value\(s\) beyond ±1e\+18",),
               command="validate",
               files={"table.csv": table_with(x1=lambda f: np.where(f.index == 2, -1e300, f["x1"]))}),

    # -- item 4: names that would share a history.csv column or a layer ------------------------
    RecipeCase("task-named-loss", NAMED_LOSS, (at(NAMED_LOSS, "loss:", "tasks.loss") + ": 'loss' is "
                                               "reserved", "Rename the task"), command="validate"),
    RecipeCase("task-named-val_loss", NAMED_VAL_LOSS, (at(NAMED_VAL_LOSS, "val_loss:", "tasks.val_loss")
                                                       + ": 'val_loss' is reserved",)),
    RecipeCase("task-named-weight", NAMED_WEIGHT, (at(NAMED_WEIGHT, "weight:", "tasks.weight")
                                                   + ": 'weight' is reserved", "weight_<task>")),
    RecipeCase("task-named-weight_loss", NAMED_WEIGHT_LOSS,
               (at(NAMED_WEIGHT_LOSS, "weight_loss:", "tasks.weight_loss") + ": .*reserved",),
               command="validate"),
    RecipeCase("task-named-grad_cosine", NAMED_GRAD, (r"tasks.grad_cosine: .*reserved",),
               command="validate"),
    RecipeCase("task-named-like-a-layer", NAMED_FEATURES,
               (r"tasks.features: 'features' is the name of a layer the model builds",),
               command="validate"),
    RecipeCase("tasks-a-and-a_macro", MACRO, (at(MACRO, "a_macro:", "tasks.a_macro") + ": task "
                                              "'a_macro' is task 'a' followed by '_macro'",
                                              "'a_macro_f1' could belong to either"),
               command="validate"),
    RecipeCase("metric-listed-twice", TWICE, (r"tasks.kind.metrics: each metric may be listed once",),
               command="validate"),

    # -- item 8: messages never print what a file holds -----------------------------------------
    RecipeCase("data-path-proc-self-environ", tiny({"data.path": "/proc/self/environ"}),
               (r"{recipe}:\d+: tasks.kind.label: label column 'kind' is not a column of the "
                "data. The file did not read as a table",),
               forbid=(SECRET, "Columns:", "Did you mean", "PATH="),
               # the secret comes first in the environment, and a newline makes a data row of
               # the rest: the file reads as a one-column table named by the secret
               command="validate", env={"MTL_TEST_SECRET": SECRET + "\nrow"}, process=True),
    RecipeCase("data-path-private-key", tiny({"data.path": "id_rsa"}),
               ("label column 'kind' is not a column", "did not read as a table"),
               forbid=("BEGIN", "PRIVATE", "MIIE", "Columns:"), command="validate",
               files={"id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
                                "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz\n"
                                "-----END OPENSSH PRIVATE KEY-----\n"}),
    RecipeCase("secret-in-a-label-cell", tiny(), ("a regression label must be numeric",),
               forbid=(SECRET,), command="validate",
               files={"table.csv": table_with(target=lambda f: [SECRET] * len(f))}),
    RecipeCase("columns-listed-bounded-and-short", tiny({"tasks.kind.label": "species"}),
               (r"tasks.kind.label: label column 'species' is not a column",
                r"Columns: .*\.\.\. \(307 in all\)"),
               forbid=("z" * 40, "number_020"), command="validate", files={"table.csv": wide_table}),
]


def test_the_corpus_is_large_and_named_uniquely():
    ids = [case.id for case in CASES]
    assert len(ids) >= 18 and len(set(ids)) == len(ids)


def _alarm(signum, frame):
    raise TimeoutError("the command blocked (a read that never returns?)")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_recipe_is_refused_clearly(case: RecipeCase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    recipe, args = prepare(case, tmp_path)
    if case.process:
        done = subprocess.run([sys.executable, "-m", "mtl_runner", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120,
                              env={**case.env, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                   "TF_CPP_MIN_LOG_LEVEL": "2"})
        code, output = done.returncode, done.stdout + done.stderr
    else:
        from click.testing import CliRunner

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(60)
        try:
            outcome = CliRunner().invoke(cli, args)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        code, output = outcome.exit_code, outcome.output
        if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
            import traceback

            output += "".join(traceback.format_exception(outcome.exception))
    check(case, tmp_path, recipe, code, output)
    for pattern in case.forbid:
        assert not re.search(pattern, output, re.IGNORECASE), f"{pattern!r} in:\n{output}"


TRICKY_NAMES = """\
name: tricky-names
data: {source: csv, path: table.csv, exclude: [tags]}
tasks:
  age: {type: regression, label: target}
  age_group: {type: classification, label: kind}
  accuracy: {type: binary, label: flag}
  weighted: {type: multilabel, label: tags, delimiter: "|"}
  loss_ratio: {type: regression, label: x2, metrics: [mae]}
model:
  trunk: {type: shared_bottom, units: [4]}
  heads: {units: []}
weighting: {name: static, telemetry: true}
training: {epochs: 2, batch_size: 16, early_stopping: null}
seed: 0
"""


def test_every_task_metric_and_split_has_its_own_history_column(tmp_path):
    """Names that are prefixes of others (age, age_group), a metric's name (accuracy), near a
    reserved word (weighted, loss_ratio): every value gets its own column, read back right."""
    import csv

    from click.testing import CliRunner

    from mtl_runner.recipe.names import task_of_column

    make_table().to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "recipe.yaml").write_text(TRICKY_NAMES)
    outcome = CliRunner().invoke(cli, ["train", str(tmp_path / "recipe.yaml"),
                                       "--results", str(tmp_path / "results")])
    assert outcome.exit_code == 0, outcome.output
    [history] = (tmp_path / "results").glob("*/history.csv")
    with open(history, newline="") as handle:
        header = next(csv.reader(handle))
    metrics = {"age": ["mae", "rmse", "r2"], "age_group": ["accuracy", "macro_f1"],
               "accuracy": ["accuracy", "f1", "auc"], "weighted": ["accuracy", "macro_f1", "auc"],
               "loss_ratio": ["mae"]}
    expected = {(task, metric, split): f"{'val_' if split == 'validation' else ''}{task}_{metric}"
                for task, names in metrics.items() for metric in ["loss", *names]
                for split in ("train", "validation")}
    expected.update({(task, "weight", "train"): f"weight_{task}" for task in metrics})
    everyone = ["epoch", "stage", "learning_rate", "loss", "val_loss", "grad_cosine", "grad_conflict"]
    assert len(header) == len(set(header))
    assert sorted(header) == sorted([*expected.values(), *everyone])
    for owner, column in expected.items():  # read back: each column names its own value
        assert task_of_column(column, metrics) == owner, column
    for column in everyone:
        assert task_of_column(column, metrics) is None, column
    frame = pd.read_csv(history)
    assert len(frame) == 2 and np.isfinite(frame[list(expected.values())].to_numpy(float)).all()

    # `mtl show --plot`: each task's panel draws its own metrics only (age not age_group's)
    from matplotlib.axes import Axes

    from mtl_runner.plots import plot_run

    drawn: dict[int, list] = {}
    titles: dict[int, str] = {}
    plot, set_title = Axes.plot, Axes.set_title

    def spy_plot(self, *args, **kwargs):
        drawn.setdefault(id(self), []).append(kwargs.get("label"))
        return plot(self, *args, **kwargs)

    def spy_title(self, label, *args, **kwargs):
        titles[id(self)] = label
        return set_title(self, label, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Axes, "plot", spy_plot)
        patch.setattr(Axes, "set_title", spy_title)
        plot_run(frame, list(metrics), "tricky", tmp_path / "history.png")
    by_task: dict[str, set] = {}  # panels are titled "<task>: <unit>"
    for axis, labels in drawn.items():
        if ": " in titles[axis]:
            by_task.setdefault(titles[axis].split(": ")[0], set()).update(filter(None, labels))
    assert by_task == {task: {"loss", *names} for task, names in metrics.items()}
