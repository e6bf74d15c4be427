"""What a user sees first: no TensorFlow start-up lines on stderr (issue 18, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

NOISE = ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "oneDNN custom operations",
         "Could not find cuda drivers", "rebuild TensorFlow")


def test_mtl_train_prints_no_tensorflow_start_up_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    done = subprocess.run(
        [sys.executable, "-m", "mtl_runner", "train", str(REPO / "recipes" / "quickstart.yaml"),
         "--results", str(tmp_path), "--set", "training.epochs=1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout
    for line in done.stderr.splitlines():
        assert not any(noise in line for noise in NOISE), line
