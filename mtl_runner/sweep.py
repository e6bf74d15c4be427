"""Sweeps: a grid of recipe overrides × seeds, trained as separate processes, resumable.

Each combination is one `mtl train RECIPE --set ...` process. Before anything runs, every
combination is resolved and validated (a bad grid value fails at once, with exit 2), and given
the identity its run will have (`mtl_runner.results.identity`): a combination that is the same
run as a completed run already in the results folder is skipped, so a sweep stopped half-way
picks up where it was, and rerunning a finished sweep trains nothing.

Example:
    >>> grid = parse_grid(["weighting.name=static,uncertainty", "model.trunk.units=[64,32],[32]"])
    >>> [c.overrides for c in expand("recipe.yaml", grid, seeds=None)][:1]
    [['weighting.name=static', 'model.trunk.units=[64,32]']]
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from mtl_runner.errors import UsageError
from mtl_runner.results.identity import RunIdentity, completed_runs, find_same_run, run_identity

Echo = Callable[[str], None]


@dataclasses.dataclass
class Combination:
    """One point of the grid: its overrides, the identity of its run, and what became of it."""

    overrides: list[str]
    identity: RunIdentity
    run_path: Path | None = None
    status: str = "pending"  # pending | done (found before) | running | completed | failed
    seconds: float | None = None
    log: Path | None = None

    @property
    def label(self) -> str:
        return " ".join(self.overrides) or "(the recipe as is)"


def split_values(text: str) -> list[str]:
    """`a,b,[64,32]` → `["a", "b", "[64,32]"]`: commas inside brackets or braces stay."""
    values, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_grid(items: tuple[str, ...] | list[str]) -> list[tuple[str, list[str]]]:
    """`--grid key=a,b` options as (key, values), in the order given.

    Raises:
        UsageError: an item is not KEY=V1,V2,..., has an empty value, or repeats a key.
    """
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        parts = split_values(values) if sep else []
        if not key or not sep or not values.strip() or any(not v for v in parts):
            raise UsageError(f"--grid takes KEY=VALUE1,VALUE2,... Received: {item!r}")
        if key in dict(grid):
            raise UsageError(f"--grid {key} is given twice; list all its values in one --grid")
        grid.append((key, list(dict.fromkeys(parts))))
    return grid


def expand(recipe: str | Path, grid: list[tuple[str, list[str]]], seeds: int | None,
           overrides: tuple[str, ...] | list[str] = ()) -> list[Combination]:
    """Every combination of the grid values (× seeds), resolved and validated.

    Args:
        recipe: the recipe file.
        grid: (key, values) pairs from `parse_grid`.
        seeds: run seeds recipe.seed, recipe.seed + 1, ... (N of them); None keeps the recipe's.
        overrides: `--set` overrides applied to every combination, before the grid's.

    Returns:
        The distinct combinations (two that would be the same run are one).

    Raises:
        RecipeError: a combination does not validate (each problem names its override).
    """
    from mtl_runner.recipe import load_recipe

    base = load_recipe(recipe, list(overrides), check_data=False).recipe
    seed_values = [None] if seeds is None else [base.seed + i for i in range(seeds)]
    keys = [key for key, _ in grid]
    combinations: dict[RunIdentity, Combination] = {}
    for values in itertools.product(*(v for _, v in grid)):
        for seed in seed_values:
            point = [f"{k}={v}" for k, v in zip(keys, values)]
            if seed is not None:
                point.append(f"seed={seed}")
            loaded = load_recipe(recipe, [*overrides, *point], check_data=False)
            identity = run_identity(loaded.recipe, "mtl")
            combinations.setdefault(identity, Combination(point, identity))
    return list(combinations.values())


def mark_done(combinations: list[Combination], results: str | Path) -> int:
    """Marks the combinations that a completed run in `results` already is (the same run by
    `mtl_runner.results.identity`: resolved recipe, seed included, role and code version).

    Returns:
        How many were found.
    """
    runs = list(completed_runs(results))
    found = 0
    for combination in combinations:
        path = find_same_run(runs, combination.identity)
        if path is not None:
            combination.run_path, combination.status = path, "done"
            found += 1
    return found


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def train_command(recipe: str | Path, combination: Combination, results: str | Path,
                  overrides: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The `python -m mtl_runner train ...` command line of one combination."""
    sets = [arg for text in (*overrides, *combination.overrides) for arg in ("--set", text)]
    return [sys.executable, "-m", "mtl_runner", "train", str(recipe), *sets,
            "--results", str(results)]


def run_id_from_log(log: Path) -> str | None:
    """The run id `mtl train` prints first ("Run <id>: <path>")."""
    try:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("Run ") and ": " in line:
                return line[4:].split(":", 1)[0].strip()
    except OSError:
        pass
    return None


def run_local(recipe: str | Path, todo: list[Combination], results: str | Path, jobs: int,
              logs: Path, echo: Echo, overrides: tuple[str, ...] | list[str] = (),
              total: int | None = None) -> None:
    """Trains the combinations as separate processes, `jobs` at a time.

    A progress line is printed whenever a run starts or ends: done, running, left, and an
    estimate of the time left (mean duration of the runs finished so far).
    """
    logs.mkdir(parents=True, exist_ok=True)
    total = total or len(todo)
    already = total - len(todo)
    queue = list(todo)
    running: dict[subprocess.Popen, tuple[Combination, float]] = {}
    durations: list[float] = []
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}

    def progress(what: str) -> None:
        finished = already + sum(c.status in ("completed", "failed") for c in todo)
        left = len(queue)
        if durations:
            eta = sum(durations) / len(durations) * (left + len(running)) / max(jobs, 1)
            estimate = f", about {clock(eta)} left"
        else:
            estimate = ""
        echo(f"[{finished}/{total} done, {len(running)} running, {left} left{estimate}] {what}")

    try:
        while queue or running:
            while queue and len(running) < jobs:
                combination = queue.pop(0)
                index = todo.index(combination) + 1
                combination.log = logs / f"{index:03d}.log"
                with open(combination.log, "wb") as log:
                    process = subprocess.Popen(train_command(recipe, combination, results, overrides),
                                               stdout=log, stderr=subprocess.STDOUT, env=environment)
                combination.status = "running"
                running[process] = (combination, time.perf_counter())
                progress(f"started {combination.label}")
            time.sleep(0.2)
            for process in [p for p in running if p.poll() is not None]:
                combination, started = running.pop(process)
                combination.seconds = time.perf_counter() - started
                durations.append(combination.seconds)
                run_id = run_id_from_log(combination.log)
                combination.run_path = Path(results) / run_id if run_id else None
                if process.returncode == 0:
                    combination.status = "completed"
                    progress(f"finished {combination.label} → {run_id} ({combination.seconds:.1f}s)")
                else:
                    combination.status = "failed"
                    progress(f"FAILED {combination.label} (exit {process.returncode}); "
                             f"see {combination.log}")
    except KeyboardInterrupt:
        for process in running:
            process.terminate()  # mtl train marks its run `interrupted`
        for process in running:
            process.wait()
        raise
