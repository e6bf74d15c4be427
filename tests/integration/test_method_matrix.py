"""Every trunk × every weighting strategy trains the quickstart for one epoch from the CLI."""

from __future__ import annotations

import json

import pytest

from mtl_runner.cli import cli
from mtl_runner.models.trunks import TRUNKS
from mtl_runner.weighting import WEIGHTINGS
from tests.conftest import REPO

PAIRS = [(t, w) for t in TRUNKS.names() for w in WEIGHTINGS.names()]


@pytest.mark.slow
@pytest.mark.parametrize("trunk, weighting", PAIRS, ids=[f"{t}-{w}" for t, w in PAIRS])
def test_trunk_and_weighting_train_one_epoch(runner, tmp_path, trunk, weighting):
    outcome = runner.invoke(cli, ["train", str(REPO / "recipes" / "quickstart.yaml"), "--results",
                                  str(tmp_path), "--set", f"model.trunk.type={trunk}",
                                  "--set", f"weighting.name={weighting}", "--set", "training.epochs=1",
                                  "--tracking", "none"])
    assert outcome.exit_code == 0, outcome.output
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert all(f"weight_{task}" in history for task in ("species", "sex", "body_mass"))
