"""`make bench` works: every benchmark once, on tiny settings (a smoke test, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_every_benchmark_runs_once_on_tiny_settings(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/run_all.py", "--quick", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "results-quick.json").read_text())
    rows = results["rows"] if isinstance(results, dict) else results
    assert len(rows) >= 10
    assert (tmp_path / "results-quick.md").read_text().count("\n|") >= 10
