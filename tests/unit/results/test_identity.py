"""One definition of "the same run" for seeds/baselines, sweeps and `run:` references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtl_runner import __version__
from mtl_runner.errors import RunError
from mtl_runner.recipe import load_recipe
from mtl_runner.results.identity import (RunIdentity, completed_runs, find_same_run,
                                         identity_of, recipe_digest, resolved_text,
                                         run_identity)
from mtl_runner.sweep import expand, mark_done, parse_grid
from mtl_runner.training.plan import baseline_recipe, reusable, with_seed
from mtl_runner.training.run import start_run


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


def complete(run_path: Path) -> Path:
    """Marks a run folder made by `start_run` completed, as `mtl train` does at its end."""
    info = json.loads((run_path / "run.json").read_text())
    info.update(status="completed", versions={"mtl": __version__})
    (run_path / "run.json").write_text(json.dumps(info))
    return run_path


def test_the_run_mtl_train_writes_is_the_run_plan_and_sweep_look_for(write_recipe, tmp_path):
    recipe = write_recipe()
    results = tmp_path / "results"
    loaded = with_seed(load_recipe(recipe, ["weighting.name=dwa"], check_data=False), 1)
    [combination] = expand(recipe, parse_grid(["weighting.name=dwa"]), seeds=None,
                           overrides=["seed=1"])
    assert reusable(results, loaded, "mtl") is None and mark_done([combination], results) == 0

    # `mtl train` loads with the data checks, `mtl sweep` without: the identity is the same
    checked = with_seed(load_recipe(recipe, ["weighting.name=dwa"]), 1)
    assert run_identity(checked.recipe) == run_identity(loaded.recipe)
    written = complete(start_run(checked, results, None, ["mtl", "train"]).path)
    text = (written / "recipe.yaml").read_text()
    assert text == resolved_text(loaded.recipe) == resolved_text(loaded.recipe.model_dump(mode="json"))
    assert identity_of(written) == run_identity(loaded.recipe) == combination.identity
    assert reusable(results, loaded, "mtl") == written
    assert mark_done([combination], results) == 1 and combination.run_path == written


def test_a_completed_run_is_reused_everywhere_and_only_when_it_is_the_same(write_recipe,
                                                                           tmp_path):
    recipe = write_recipe()
    results = tmp_path / "results"
    loaded = load_recipe(recipe, check_data=False)
    text = resolved_text(loaded.recipe)
    fake_run(results, "a-failed", text, status="failed")
    fake_run(results, "b-old-code", text, version="0.0.1")
    fake_run(results, "c-baseline", text, role="baseline:kind")
    fake_run(results, "c-no-version", text, version=None)
    assert reusable(results, loaded, "mtl") is None
    [combination] = expand(recipe, [], seeds=None)
    assert mark_done([combination], results) == 0

    same = fake_run(results, "d-same", text, digest=False)  # an older run: recipe.yaml hashed
    assert identity_of(same) == run_identity(loaded.recipe, "mtl")
    assert reusable(results, loaded, "mtl") == same
    assert mark_done([combination], results) == 1 and combination.run_path == same
    assert reusable(results, with_seed(loaded, 5), "mtl") is None  # the seed is part of it
    assert reusable(results, loaded, "baseline:kind") == results / "c-baseline"
    assert reusable(results, baseline_recipe(loaded, "kind"), "baseline:kind") is None


def test_a_run_without_a_code_version_is_the_same_as_no_run():
    known = RunIdentity("abc", "mtl", __version__)
    unknown = RunIdentity("abc", "mtl", None)
    assert known.same_run(known)
    assert not known.same_run(RunIdentity("abc", "mtl", "0.0.1"))
    assert not known.same_run(RunIdentity("abc", "baseline:kind", __version__))
    assert not known.same_run(unknown) and not unknown.same_run(known)
    assert not unknown.same_run(unknown)


def test_the_first_same_run_in_folder_order_is_found(tmp_path):
    results = tmp_path / "results"
    first = fake_run(results, "r1", "seed: 0\n")
    fake_run(results, "r2", "seed: 0\n")
    wanted = RunIdentity(recipe_digest("seed: 0\n"), "mtl", __version__)
    assert [path.name for path, _, _ in completed_runs(results)] == ["r1", "r2"]
    assert find_same_run(completed_runs(results), wanted) == first
    assert find_same_run(completed_runs(tmp_path / "missing"), wanted) is None


def test_sweep_combinations_that_are_the_same_run_are_one(write_recipe):
    recipe = write_recipe()
    combinations = expand(recipe, parse_grid(["model.trunk.units=[8],[ 8 ],[4]"]), seeds=2)
    assert [c.overrides for c in combinations] == [
        ["model.trunk.units=[8]", "seed=0"], ["model.trunk.units=[8]", "seed=1"],
        ["model.trunk.units=[4]", "seed=0"], ["model.trunk.units=[4]", "seed=1"]]
    assert len({c.identity for c in combinations}) == 4


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


def test_a_run_reference_to_runs_without_a_code_version_must_name_one(tmp_path):
    weights = pytest.importorskip("mtl_runner.training.weights")
    results = tmp_path / "results"
    only = fake_run(results, "r1", "seed: 0\n", run_name="old", version=None)
    assert weights.find_run("old", results) == only  # one run by that name: no doubt
    fake_run(results, "r2", "seed: 0\n", run_name="old", version=None)
    with pytest.raises(RunError, match=r"run:old: 2 completed runs are named 'old' but differ in "
                                       r"recipe, role or code version, or record none \(r1, r2\)"):
        weights.find_run("old", results)
