"""One definition of "the same run" for seeds/baselines, sweeps and `run:` references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_runner import __version__
from mtl_runner.errors import RunError
from mtl_runner.recipe import load_recipe
from mtl_runner.results.identity import (find_completed, identity_for, identity_of,
                                         recipe_digest, resolved_text)
from mtl_runner.sweep import expand, mark_done, parse_grid
from mtl_runner.training.plan import reusable, with_seed
from mtl_runner.training.run import resolved_recipe_yaml
from tests.conftest import TINY_RECIPE


def fake_run(results: Path, name: str, text: str, *, role: str = "mtl",
             version: str | None = __version__, status: str = "completed",
             digest: bool = True, run_name: str = "tiny", started: str = "") -> Path:
    """A run folder as `mtl train` leaves it, without training."""
    path = results / name
    path.mkdir(parents=True)
    (path / "recipe.yaml").write_text(text)
    info = {"id": name, "name": run_name, "recipe_name": run_name, "status": status,
            "role": role, "started_at": started or name}
    if digest:
        info["recipe_sha256"] = recipe_digest(text)
    if version is not None:
        info["versions"] = {"mtl": version}
    (path / "run.json").write_text(json.dumps(info))
    return path


def test_plan_and_sweep_resolve_a_recipe_to_the_same_identity(write_recipe):
    recipe = write_recipe()
    loaded = with_seed(load_recipe(recipe, ["weighting.name=dwa"], check_data=False), 1)
    [combination] = expand(recipe, parse_grid(["weighting.name=dwa"]), seeds=None,
                           overrides=["seed=1"])
    assert resolved_text(combination.resolved) == resolved_recipe_yaml(loaded)


def test_a_completed_run_is_reused_everywhere_and_only_when_it_is_the_same(write_recipe,
                                                                           tmp_path):
    recipe = write_recipe()
    results = tmp_path / "results"
    loaded = load_recipe(recipe, check_data=False)
    text = resolved_recipe_yaml(loaded)
    fake_run(results, "a-failed", text, status="failed")
    fake_run(results, "b-old-code", text, version="0.0.1")
    fake_run(results, "c-baseline", text, role="baseline:kind")
    assert reusable(results, loaded, "mtl") is None
    [combination] = expand(recipe, [], seeds=None)
    assert mark_done([combination], results) == 0

    same = fake_run(results, "d-same", text, digest=False)  # an older run: recipe.yaml hashed
    assert identity_of(same) == identity_for(text, "mtl")
    assert reusable(results, loaded, "mtl") == same
    assert mark_done([combination], results) == 1 and combination.run_path == same
    assert reusable(results, with_seed(loaded, 5), "mtl") is None  # the seed is part of it
    assert find_completed(results, identity_for(text, "baseline:kind")) == results / "c-baseline"


def test_run_reference_by_name_must_name_one_run(tmp_path):
    weights = pytest.importorskip("mtl_runner.training.weights")
    results = tmp_path / "results"
    fake_run(results, "r1", "seed: 0\n", run_name="pretrain", started="2026-01-01T00:00:01")
    latest = fake_run(results, "r2", "seed: 0\n", run_name="pretrain",
                      started="2026-01-01T00:00:02")
    assert weights.find_run("pretrain", results) == latest  # the same run twice: the latest
    fake_run(results, "r3", "seed: 1\n", run_name="pretrain", started="2026-01-01T00:00:03")
    with pytest.raises(RunError, match=r"run:pretrain: 3 completed runs are named 'pretrain' but "
                                       r"differ .* name one by its id"):
        weights.find_run("pretrain", results)
