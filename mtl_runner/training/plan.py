"""Several runs from one recipe: seeds, and single-task baselines beside the multi-task run.

`mtl train RECIPE --seeds 3 --baselines` trains, for each seed, the recipe and then every task
alone (same data split, trunk, head, budget and seed), recording each baseline with role
`baseline:<task>` and the multi-task run as its parent. A run (multi-task or baseline) that
already ran to completion in the results folder — the same run by
`mtl_runner.results.identity` — is reused, not retrained.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from mtl_runner.errors import UsageError
from mtl_runner.recipe import LoadedRecipe, Recipe
from mtl_runner.results.identity import completed_runs, find_same_run, run_identity
from mtl_runner.training.prepare import stratify_column


def parse_seeds(text: str | None, default: int) -> list[int]:
    """`3` → [0, 1, 2] (counting from the recipe's seed); `0,5,7` → [0, 5, 7]."""
    if text is None:
        return [default]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(f"--seeds takes N or a list like 0,1,2. Received: {text!r}")
    if len(parts) == 1:
        count = int(parts[0])
        if count < 1:
            raise UsageError(f"--seeds N needs N ≥ 1. Received: {text!r}")
        return [default + i for i in range(count)]
    return [int(p) for p in parts]


def with_seed(loaded: LoadedRecipe, seed: int) -> LoadedRecipe:
    """The recipe with another seed (the split keeps its own seed only if the recipe set one)."""
    recipe = loaded.recipe.model_copy(update={"seed": seed}, deep=True)
    return dataclasses.replace(loaded, recipe=recipe)


def baseline_recipe(loaded: LoadedRecipe, task: str) -> LoadedRecipe:
    """The same recipe with one task: same split (stratified on the same column), features
    (the other tasks' labels stay out), trunk, heads, schedule and seed. Early stopping that
    watched another task watches val_loss."""
    recipe = loaded.recipe
    data = recipe.model_dump(mode="python")
    others = [c for name, t in recipe.tasks.items() if name != task
              for c in ([t.label] if isinstance(t.label, str) else t.label)]
    # the other tasks' labels must not turn into input features of the baseline
    data["data"]["exclude"] = list(dict.fromkeys([*data["data"]["exclude"], *others]))
    data["tasks"] = {task: data["tasks"][task]}
    data["data"]["split"]["stratify"] = stratify_column(recipe) or False
    stopping = data["training"].get("early_stopping")
    if stopping:
        monitor = stopping["monitor"].removeprefix("val_")
        if monitor not in ("loss", f"{task}_loss") and not monitor.startswith(f"{task}_"):
            stopping["monitor"] = "val_loss" if stopping["monitor"].startswith("val_") else "loss"
    return dataclasses.replace(loaded, recipe=Recipe.model_validate(data))


def reusable(results: Path, loaded: LoadedRecipe, role: str) -> Path | None:
    """A completed run in `results` that is the same run (`mtl_runner.results.identity`)."""
    return find_same_run(completed_runs(results), run_identity(loaded.recipe, role))


def train_plan(loaded: LoadedRecipe, results: str | Path, name: str | None, seeds: list[int],
               baselines: bool, command: list[str], echo: Callable[[str], None]) -> list[Path]:
    """Trains the recipe for every seed, each followed by its baselines when asked.

    Returns:
        The run folders, trained or reused, in order.
    """
    from mtl_runner.training.run import train

    results = Path(results)
    tasks = list(loaded.recipe.tasks)
    total = len(seeds) * (1 + (len(tasks) if baselines else 0))
    folders: list[Path] = []
    count = 0
    for seed in seeds:
        seeded = with_seed(loaded, seed)
        count += 1
        reused = reusable(results, seeded, "mtl")
        if reused is not None:
            echo(f"[{count}/{total}] {loaded.recipe.name} (seed {seed}): reusing {reused.name}")
            parent_id, parent_path = reused.name, reused
        else:
            echo(f"[{count}/{total}] {loaded.recipe.name} (seed {seed})")
            parent = train(seeded, results, name=name, command=command, echo=echo)
            parent_id, parent_path = parent.run_id, parent.path
        folders.append(parent_path)
        if not baselines:
            continue
        for task in tasks:
            count += 1
            single = baseline_recipe(seeded, task)
            role = f"baseline:{task}"
            reused = reusable(results, single, role)
            if reused is not None:
                echo(f"[{count}/{total}] {role} (seed {seed}): reusing {reused.name}")
                folders.append(reused)
                continue
            echo(f"[{count}/{total}] {role} (seed {seed})")
            run = train(single, results, name=f"{name or loaded.recipe.name}-{task}", command=command,
                        echo=echo, role=role, parent=parent_id)
            folders.append(run.path)
    return folders
