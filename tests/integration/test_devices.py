"""Device set-up: MirroredStrategy over two logical CPU devices, TF_CONFIG. (The loop against
Keras' fit on one device: tests/unit/training/test_loop.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from mtl_runner.cli import cli
from tests.conftest import REPO

TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mtl_runner.cli import main
sys.argv = ["mtl", *sys.argv[1:]]
main()
"""


def train_in_subprocess(recipe, results, *extra):
    return subprocess.run([sys.executable, "-c", TWO_CPUS, "train", str(recipe), "--results",
                           str(results), "--set", "weighting.name=pcgrad", "--set", "training.epochs=3",
                           "--set", "training.early_stopping=null", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(write_recipe, tmp_path):
    recipe = write_recipe()
    one = train_in_subprocess(recipe, tmp_path / "one")
    two = train_in_subprocess(recipe, tmp_path / "two", "--set", "runtime.strategy=mirrored")
    for done in (one, two):
        assert done.returncode == 0, done.stdout + done.stderr
    assert "MirroredStrategy with 2 replica(s), batch 8 per replica" in two.stdout
    [a], [b] = list((tmp_path / "one").iterdir()), list((tmp_path / "two").iterdir())
    info = json.loads((b / "run.json").read_text())
    assert (info["strategy"], info["replicas"]) == ("MirroredStrategy", 2)
    assert json.loads((a / "run.json").read_text())["replicas"] == 1
    ma, mb = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    scale = ma["value"].abs().clip(lower=1.0)
    assert ((ma["value"] - mb["value"]).abs() / scale).max() < 0.05  # same training, other reduction order
    # every epoch's logs, validation included, are over the whole batch, not one replica's half
    # (Keras' fit averages the replicas' own validation AUC, F1 and R²: -1.32 for -0.27 here)
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    numeric = ha.columns.drop("stage")
    assert list(ha.columns) == list(hb.columns)
    assert ((ha[numeric] - hb[numeric]).abs() / ha[numeric].abs().clip(lower=1.0)).max().max() < 1e-3


def test_a_malformed_tf_config_is_a_clear_error(runner, write_recipe, tmp_path):
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(tmp_path / "r")],
                            env={"TF_CONFIG": '{"cluster": {"worker": ["localhost:1", "localhost:2"]}}'})
    assert outcome.exit_code == 1
    assert "TF_CONFIG is not a usable cluster description (KeyError('task'))" in outcome.output
    assert not (tmp_path / "r").exists()


def test_gpu_asked_without_one_is_a_clear_error(runner, write_recipe, tmp_path):
    outcome = runner.invoke(cli, ["train", str(write_recipe()), "--results", str(tmp_path / "r"),
                                  "--device", "gpu"])
    assert outcome.exit_code == 1
    assert "runtime.device is gpu, but no GPU is visible" in outcome.output
    [run] = list((tmp_path / "r").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_the_batch_must_split_evenly_over_replicas(write_recipe, tmp_path):
    done = train_in_subprocess(write_recipe(), tmp_path / "r", "--set", "runtime.strategy=mirrored",
                               "--set", "training.batch_size=15")
    assert done.returncode == 1
    assert "training.batch_size 15 is the global batch and must divide evenly over 2 replicas" in done.stderr
