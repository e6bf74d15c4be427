"""Killed mid-run, resumed from the last checkpoint: every epoch once, the same final metrics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd

from mtl_runner.cli import cli
from tests.conftest import REPO

RECIPE = """\
name: resumable
data: {source: builtin, name: digits, split: {validation: 0.2, test: 0.2}}
tasks:
  digit: {type: classification, label: digit}
model: {trunk: {type: shared_bottom, units: [32], dropout: 0.2}, heads: {units: [16]}}
training: {epochs: 6, batch_size: 4, early_stopping: null}
runtime: {deterministic: true, checkpoint_seconds: 0}
seed: 3
"""


def start(recipe, results):
    return subprocess.Popen([sys.executable, "-m", "mtl_runner", "train", str(recipe), "--results",
                             str(results)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_then_resume_matches_an_uninterrupted_run(runner, tmp_path):
    recipe = tmp_path / "resumable.yaml"
    recipe.write_text(RECIPE)
    killed = start(recipe, tmp_path / "killed")
    deadline = time.time() + 300
    state = None
    while time.time() < deadline:
        folders = list((tmp_path / "killed").glob("*/checkpoints/state.json"))
        if folders and json.loads(folders[0].read_text())["epoch"] >= 2:
            state = folders[0]
            break
        time.sleep(0.05)
    assert state is not None, "no checkpoint after epoch 2"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    whole = start(recipe, tmp_path / "whole")
    assert whole.wait(timeout=600) == 0
    run = state.parent.parent
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    listed = runner.invoke(cli, ["runs", "--results", str(tmp_path / "killed")])
    assert "crashed" in listed.output

    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(tmp_path / "killed")])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming stage train after epoch" in resumed.output
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and len(info["resumed"]) == 1
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5, 6]

    [reference] = list((tmp_path / "whole").iterdir())
    a = pd.read_csv(reference / "metrics.csv")
    b = pd.read_csv(run / "metrics.csv")
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()


def test_resume_refuses_a_completed_run(runner, write_recipe, tmp_path):
    results = tmp_path / "r"
    assert runner.invoke(cli, ["train", str(write_recipe()), "--results", str(results)]).exit_code == 0
    [run] = list(results.iterdir())
    outcome = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(results)])
    assert outcome.exit_code == 2
    assert f"run {run.name} is completed; only failed, interrupted or crashed runs can be resumed" in outcome.output


def test_sigterm_saves_a_checkpoint_where_it_lands_and_marks_the_run_interrupted(tmp_path):
    recipe = tmp_path / "resumable.yaml"
    # long enough that the signal always lands while training (6 epochs could end first); no
    # periodic checkpoints, so the one found afterwards is the signal's
    recipe.write_text(RECIPE.replace("epochs: 6", "epochs: 60")
                      .replace("checkpoint_seconds: 0", "checkpoint_seconds: 100000"))
    process = start(recipe, tmp_path / "r")
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "r").glob("*/history.csv")):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 1, output
    assert "interrupted" in output and "mtl train --resume" in output and "Traceback" not in output
    [run] = list((tmp_path / "r").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted"
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["epoch"] >= 1
    steps = f" and {state['step']} steps" if state["step"] else ""
    assert f"last checkpoint after epoch {state['epoch']}{steps}" in info["error"]
    # the checkpoint is where training stopped: history.csv has exactly its completed epochs
    assert pd.read_csv(run / "history.csv")["epoch"].max() == state["epoch"]


STAGED = """\
name: staged
data: {source: csv, path: table.csv, exclude: [tags]}
tasks:
  kind: {type: classification, label: kind}
  target: {type: regression, label: target}
model: {trunk: {type: shared_bottom, units: [8], dropout: 0.1}, heads: {units: [4]}}
training:
  batch_size: 8
  early_stopping: null
  stages:
    - {name: heads_only, epochs: 2, learning_rate: 0.01, trainable: heads}
    - {name: everything, epochs: 3, learning_rate: 0.001, trainable: all}
runtime: {deterministic: true, checkpoint_seconds: 0}
"""


def test_resuming_at_a_stage_boundary_matches_an_uninterrupted_run(runner, write_recipe, tmp_path, monkeypatch):
    import mtl_runner.training.stage as loop

    recipe = write_recipe(STAGED)
    whole = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    [reference] = list((tmp_path / "whole").iterdir())
    heads, everything = json.loads((reference / "run.json").read_text())["stages"]
    assert heads["trainable_parameters"] < everything["trainable_parameters"]  # the trunk thaws

    real = loop.fit_stage

    def interrupted_in_stage_two(*args, **kwargs):
        if args[1] == 1:  # fit_stage(session, index, stage, state)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "fit_stage", interrupted_in_stage_two)
    cut = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path / "cut")])
    assert cut.exit_code == 1 and "interrupted" in cut.output
    monkeypatch.setattr(loop, "fit_stage", real)
    [run] = list((tmp_path / "cut").iterdir())
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert (state["stage"], state["epoch"]) == (1, 2)

    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(tmp_path / "cut")])
    assert resumed.exit_code == 0, resumed.output
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["stage"].tolist() == ["heads_only"] * 2 + ["everything"] * 3
    a, b = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()


MID_EPOCH = STAGED.replace("checkpoint_seconds: 0}", "checkpoint_seconds: 0, checkpoint_steps: 2}")


def train_stopped_at(runner, monkeypatch, recipe, results, epoch: int, batch: int):
    """Trains `recipe` with a KeyboardInterrupt after step `batch` of epoch `epoch` (0-based,
    raised by a callback after the checkpointer's) and returns the interrupted run's folder."""
    import keras

    import mtl_runner.training.stage as loop

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            self.epoch = index

        def on_train_batch_end(self, index, logs=None):
            if (self.epoch, index) == (epoch, batch):
                raise KeyboardInterrupt

    real = loop.extra_callbacks
    monkeypatch.setattr(loop, "extra_callbacks", lambda *a: [*real(*a), Stop()])
    cut = runner.invoke(cli, ["train", str(recipe), "--results", str(results)])
    monkeypatch.setattr(loop, "extra_callbacks", real)
    assert cut.exit_code == 1 and "interrupted" in cut.output
    [run] = list(results.iterdir())
    return run


def test_a_run_stopped_mid_epoch_resumes_from_its_step_checkpoint(runner, write_recipe, tmp_path,
                                                                   monkeypatch):
    recipe = write_recipe(MID_EPOCH)  # 44 training rows in batches of 8: 6 steps an epoch
    whole = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    run = train_stopped_at(runner, monkeypatch, recipe, tmp_path / "cut", epoch=3, batch=4)
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    # stage 2 (everything) began after epoch 2; epoch 4 was 4 steps in: checkpoint ckpt-(3·6+4)
    assert (state["stage"], state["epoch"], state["step"]) == (1, 3, 4)
    assert state["checkpoints"][-1] == "ckpt-22"

    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(tmp_path / "cut")])
    assert resumed.exit_code == 0, resumed.output
    assert "resuming stage everything after epoch 3 and 4 steps from checkpoint ckpt-22" in resumed.output
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    [reference] = list((tmp_path / "whole").iterdir())
    expected = pd.read_csv(reference / "history.csv")
    # epochs after the cut are the uninterrupted run's; epoch 4's training logs cover its last 2 steps
    columns = [c for c in expected.columns if c.startswith("val_")]
    assert history[columns].round(6).equals(expected[columns].round(6))
    a, b = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()


PATIENT = MID_EPOCH.replace("early_stopping: null", "early_stopping: {monitor: val_loss, patience: 3, min_delta: 1000}")


def test_early_stopping_keeps_its_progress_across_a_resume(runner, write_recipe, tmp_path,
                                                           monkeypatch):
    # min_delta 1000: no epoch after the first improves, so stage 2 stops after 3 more epochs
    # and restores its first epoch's weights; a resume that forgot this would train on
    recipe = write_recipe(PATIENT.replace("epochs: 3", "epochs: 8"))
    whole = runner.invoke(cli, ["train", str(recipe), "--results", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    [reference] = list((tmp_path / "whole").iterdir())
    expected = json.loads((reference / "run.json").read_text())
    assert expected["stages"][1]["epochs"] == 4 and expected["best_epoch"] == 3

    run = train_stopped_at(runner, monkeypatch, recipe, tmp_path / "cut", epoch=4, batch=2)
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (4, 2)
    assert state["early_stopping"]["wait"] == 1 and state["early_stopping"]["best_epoch"] == 2
    assert state["early_stopping"]["best_weights"] == "best_weights-2.npz"
    assert (run / "checkpoints" / "best_weights-2.npz").exists()

    resumed = runner.invoke(cli, ["train", "--resume", run.name, "--results", str(tmp_path / "cut")])
    assert resumed.exit_code == 0, resumed.output
    info = json.loads((run / "run.json").read_text())
    assert info["stages"][1]["epochs"] == 4 and info["best_epoch"] == 3
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == list(range(1, 7))
    a, b = pd.read_csv(reference / "metrics.csv"), pd.read_csv(run / "metrics.csv")
    assert a["value"].round(6).tolist() == b["value"].round(6).tolist()
