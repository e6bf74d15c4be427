"""A run interrupted in every state it can be in, then resumed: the same model as a run never
interrupted (weights digest), the same metrics.csv, the same history.

The recipe has two stages with early stopping that restores its best weights in each (min_delta
1000: the first epoch of a stage stays its best), so a resume that evaluated or saved any weights
other than the trained ones — fresh ones, the last epoch's instead of the best — shows in the
digest. Stage 1 (heads_only) runs its 2 epochs; stage 2 (everything, 8 epochs planned) is
stopped early after epoch 6 and restores epoch 3.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import pandas as pd
import pytest

from mtl_runner.cli import cli
from tests.conftest import make_table

RECIPE = """\
name: matrix
data: {source: csv, path: table.csv, exclude: [tags]}
tasks:
  kind: {type: classification, label: kind}
  target: {type: regression, label: target}
model: {trunk: {type: shared_bottom, units: [8], dropout: 0.1}, heads: {units: [4]}}
training:
  batch_size: 8
  early_stopping: {monitor: val_loss, patience: 3, min_delta: 1000}
  stages:
    - {name: heads_only, epochs: 2, learning_rate: 0.01, trainable: heads}
    - {name: everything, epochs: 8, learning_rate: 0.001, trainable: all}
runtime: {deterministic: true, checkpoint_seconds: 0, checkpoint_steps: 2}
seed: 0
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("matrix")
    make_table().to_csv(folder / "table.csv", index=False)
    path = folder / "matrix.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def reference(recipe) -> Path:
    """The uninterrupted run."""
    from click.testing import CliRunner

    results = recipe.parent / "whole"
    outcome = CliRunner().invoke(cli, ["train", str(recipe), "--results", str(results)])
    assert outcome.exit_code == 0, outcome.output
    [run] = list(results.iterdir())
    info = json.loads((run / "run.json").read_text())
    assert [s["epochs"] for s in info["stages"]] == [2, 4] and info["best_epoch"] == 3
    return run


class StopAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) after step `batch` of epoch `epoch` (0-based),
    or at the end of that epoch when `batch` is None; runs after the checkpointer."""

    def __init__(self, epoch: int, batch: int | None):
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_epoch_begin(self, index, logs=None):
        self.current = index

    def on_train_batch_end(self, index, logs=None):
        if self.batch is not None and (self.current, index) == (self.epoch, self.batch):
            raise KeyboardInterrupt

    def on_epoch_end(self, index, logs=None):
        if self.batch is None and index == self.epoch:
            raise KeyboardInterrupt


def interrupt(where: str, monkeypatch) -> None:
    """Makes the next run stop with KeyboardInterrupt at `where`."""
    import mtl_runner.training.evaluate as evaluate
    import mtl_runner.training.stage as loop
    import mtl_runner.training.prepare as prepare

    def raise_interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    def after_callbacks(epoch, batch):
        real = loop.extra_callbacks
        monkeypatch.setattr(loop, "extra_callbacks", lambda *a: [*real(*a), StopAt(epoch, batch)])

    if where == "reading-data":
        monkeypatch.setattr(prepare, "prepare", raise_interrupt)
    elif where == "mid-epoch":
        after_callbacks(4, 2)  # epoch 5, stage 2, 3 steps in (a step checkpoint every 2 steps)
    elif where == "mid-epoch-between-step-checkpoints":
        after_callbacks(3, 0)  # 1 step in: the checkpoint is the previous epoch's end
    elif where == "epoch-end":
        after_callbacks(3, None)
    elif where == "last-epoch-of-a-stage":
        after_callbacks(1, None)  # stage 1's last epoch, before its best weights are restored
    elif where == "stage-end":
        real = loop.fit_stage

        def second_stage_interrupted(*args, **kwargs):
            if args[1] == 1:  # fit_stage(session, index, stage, state)
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(loop, "fit_stage", second_stage_interrupted)
    elif where == "after-the-last-epoch":
        after_callbacks(5, None)  # the epoch early stopping ends the run at
    elif where == "final-evaluation":
        monkeypatch.setattr(evaluate, "evaluate", raise_interrupt)
    elif where == "model-save":
        monkeypatch.setattr(keras.Model, "save", raise_interrupt)
    else:
        raise AssertionError(where)


def cut_run(runner, recipe, results, where, monkeypatch) -> Path:
    with monkeypatch.context() as patch:
        interrupt(where, patch)
        cut = runner.invoke(cli, ["train", str(recipe), "--results", str(results)])
    assert cut.exit_code == 1, cut.output
    assert "interrupted" in cut.output and "Traceback" not in cut.output
    [run] = list(results.iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "mtl train --resume" in info["error"]
    return run


def assert_same_run(run: Path, reference: Path) -> None:
    info, expected = (json.loads((r / "run.json").read_text()) for r in (run, reference))
    assert info["status"] == "completed"
    assert info["weights_sha256"] == expected["weights_sha256"]
    assert (info["epochs"], info["best_epoch"]) == (expected["epochs"], expected["best_epoch"])
    assert [s["epochs"] for s in info["stages"]] == [s["epochs"] for s in expected["stages"]]
    a, b = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert a[["task", "metric", "split"]].equals(b[["task", "metric", "split"]])
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()
    history, whole = pd.read_csv(run / "history.csv"), pd.read_csv(reference / "history.csv")
    assert history["epoch"].tolist() == whole["epoch"].tolist()
    validation = [c for c in whole.columns if c.startswith("val_")]
    assert history[validation].round(6).equals(whole[validation].round(6))
    # the saved model is the evaluated one
    model = keras.saving.load_model(run / "model.keras")
    from mtl_runner.training.run import weights_digest

    assert weights_digest(model) == expected["weights_sha256"]


STATES = ["reading-data", "mid-epoch", "mid-epoch-between-step-checkpoints", "epoch-end",
          "last-epoch-of-a-stage", "stage-end", "after-the-last-epoch", "final-evaluation",
          "model-save"]


@pytest.mark.parametrize("where", STATES)
def test_a_run_interrupted_anywhere_resumes_to_the_uninterrupted_model(where, runner, recipe,
                                                                         reference, tmp_path,
                                                                         monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, where, monkeypatch)
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(run, reference)


def test_the_issue_reproduction_metrics_and_model_deleted_after_training(runner, recipe, reference,
                                                                         tmp_path):
    """A completed run set back to `interrupted` with metrics.csv and model.keras deleted: the
    state Ctrl-C during the final evaluation leaves. The resume evaluates the trained weights."""
    results = tmp_path / "r"
    shutil.copytree(reference, results / reference.name)
    run = results / reference.name
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(dict(info, status="interrupted")))
    (run / "metrics.csv").unlink()
    (run / "model.keras").unlink()
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after training ended (epoch 6)" in resumed.output
    assert_same_run(run, reference)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one_and_its_position(
        runner, recipe, reference, tmp_path, monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)  # after epoch 4
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    newest, older = state["positions"][-1], state["positions"][-2]
    assert (newest["epoch"], newest["step"]) == (4, 0)
    assert (older["epoch"], older["step"]) == (3, 4)  # the step checkpoint inside epoch 4
    [data] = list((run / "checkpoints").glob(f"{newest['checkpoint']}.data-*"))
    truncate(data)
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 0, resumed.output
    assert f"warning: 1 newer checkpoint(s) could not be read ({data}" in resumed.output
    assert (f"resuming from {older['checkpoint']} instead, after epoch 3 and 4 steps"
            in resumed.output)
    assert f"resuming stage everything after epoch 3 and 4 steps from checkpoint {older['checkpoint']}" \
        in resumed.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(1, 7))
    whole = pd.read_csv(reference / "history.csv")
    # epochs after the fallback's position are the uninterrupted run's, not one behind
    assert history["val_loss"].iloc[4:].round(6).tolist() == whole["val_loss"].iloc[4:].round(6).tolist()
    a, b = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()


def test_every_checkpoint_truncated_is_an_error_naming_the_files(runner, recipe, tmp_path,
                                                                  monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    files = sorted((run / "checkpoints").glob("ckpt-*.data-*"))
    assert len(files) == 2
    for path in files:
        truncate(path)
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 1
    assert "no readable checkpoint to resume from" in resumed.output
    for path in files:
        assert str(path) in resumed.output
    assert "Traceback" not in resumed.output and "IndexError" not in resumed.output
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_a_deleted_checkpoints_folder_is_named_with_the_epochs_history_holds(runner, recipe,
                                                                              tmp_path, monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    shutil.rmtree(run / "checkpoints")
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 2
    assert f"{run / 'checkpoints'} is missing, although history.csv records 4 epochs" in resumed.output
    assert "before its first epoch" not in resumed.output and "Traceback" not in resumed.output
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"  # untouched


def test_an_edited_recipe_is_refused_before_anything_is_restored(runner, recipe, tmp_path,
                                                                  monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    text = (run / "recipe.yaml").read_text()
    (run / "recipe.yaml").write_text(text.replace("- 8", "- 16", 1))
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 2
    assert "recipe.yaml was edited after the run started" in resumed.output
    assert "shape" not in resumed.output and "Traceback" not in resumed.output
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_a_checkpoint_of_another_mtl_version_is_refused(runner, recipe, tmp_path, monkeypatch):
    """Checkpoints hold variables by position, and 0.2 ordered image models' otherwise: a run
    checkpointed by another version is refused, not restored into the wrong variables."""
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    info = json.loads((run / "run.json").read_text())
    info["versions"]["mtl"] = "0.1.0"
    (run / "run.json").write_text(json.dumps(info))
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 2, resumed.output
    assert "was checkpointed by mtl 0.1.0" in resumed.output
    assert "pip install 'mtl-runner==0.1.0'" in resumed.output and "Traceback" not in resumed.output
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_interrupted_while_reading_data_says_resume_starts_it_again(runner, recipe, tmp_path,
                                                                     monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "reading-data", monkeypatch)
    error = json.loads((run / "run.json").read_text())["error"]
    assert "before its first checkpoint; start it again in the same folder with mtl train --resume" \
        in error


def test_a_history_with_a_gap_before_the_checkpoint_is_refused(runner, recipe, tmp_path,
                                                               monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)  # checkpoints after 3+4 steps, 4
    history = pd.read_csv(run / "history.csv")
    history[history["epoch"] <= 2].to_csv(run / "history.csv", index=False)
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 2
    assert "history.csv lacks epoch(s) 3" in resumed.output and "Traceback" not in resumed.output
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    (run / "history.csv").unlink()
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 2 and "history.csv lacks epoch(s) 1, 2, 3" in resumed.output


def test_deleted_checkpoint_files_are_named_not_a_reader_error(runner, recipe, tmp_path,
                                                               monkeypatch):
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    for path in (run / "checkpoints").glob("ckpt-*"):
        path.unlink()
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 1
    assert "its files are missing" in resumed.output
    assert "TensorSliceReader" not in resumed.output and "Traceback" not in resumed.output


def test_a_run_checkpointed_in_the_earlier_state_format_resumes_with_its_best_weights(
        runner, recipe, reference, tmp_path, monkeypatch):
    """state.json before per-checkpoint positions: top-level position, one best_weights.npz."""
    results = tmp_path / "cut"
    run = cut_run(runner, recipe, results, "epoch-end", monkeypatch)
    folder = run / "checkpoints"
    state = json.loads((folder / "state.json").read_text())
    newest = state["positions"][-1]
    best = newest["early_stopping"].pop("best_weights")
    assert best is not None
    (folder / best).rename(folder / "best_weights.npz")
    old = {k: newest[k] for k in ("stage", "stage_first_epoch", "epoch", "step", "early_stopping")}
    old["checkpoints"] = [p["checkpoint"] for p in state["positions"]]
    (folder / "state.json").write_text(json.dumps(old))
    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(run, reference)
