"""`mtl sweep RECIPE --grid KEY=V1,V2 ...`: train a grid of recipe variants, then compare them."""

from __future__ import annotations

from pathlib import Path

import click

from mtl_runner.commands import results_option
from mtl_runner.errors import MtlError, RunError


@click.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2,...",
              help="A recipe key and the values to try (repeatable; the sweep is every "
                   "combination). Commas inside [...] stay: model.trunk.units=[64,32],[32].")
@click.option("--seeds", type=click.IntRange(1), default=None,
              help="Train each combination with N seeds: seed, seed+1, ... [default: the "
                   "recipe's seed only].")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
              help="Runs at a time, each a separate process.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key in every combination (repeatable).")
@click.option("--dry-run", is_flag=True, help="List the combinations and which are done; train nothing.")
@results_option
def sweep(recipe: str, grid: tuple[str, ...], seeds: int | None, jobs: int,
          overrides: tuple[str, ...], dry_run: bool, results: str) -> None:
    """Train every combination of --grid values (× --seeds) of RECIPE, N at a time, and end
    with the `mtl compare` table of the sweep.

    Combinations whose resolved recipe (seed included) already has a completed run in
    --results are skipped, so an interrupted sweep resumes and a finished one trains nothing.
    Each run's output goes to RESULTS/.sweeps/<time>/NNN.log.

    \b
    mtl sweep recipes/quickstart.yaml --grid weighting.name=static,uncertainty \\
        --grid model.trunk.type=shared_bottom,mmoe --seeds 3 --jobs 2
    """
    import time

    from mtl_runner.results.run_dir import utc_now
    from mtl_runner.sweep import clock, expand, mark_done, parse_grid, run_local

    combinations = expand(recipe, parse_grid(grid), seeds, overrides)
    found = mark_done(combinations, results)
    todo = [c for c in combinations if c.status != "done"]
    click.echo(f"Sweep of {len(combinations)} run(s): {found} done already, {len(todo)} to train"
               f"{f', {jobs} at a time' if todo else ''}.")
    if dry_run:
        for combination in combinations:
            where = f" → {combination.run_path.name}" if combination.run_path else ""
            click.echo(f"  {'done' if combination.status == 'done' else 'todo'}  "
                       f"{combination.label}{where}")
        return
    started = time.perf_counter()
    if todo:
        logs = Path(results) / ".sweeps" / f"{utc_now():%Y%m%d-%H%M%S}"
        run_local(recipe, todo, results, jobs, logs, click.echo, overrides, len(combinations))
        click.echo(f"Trained {len(todo)} run(s) in {clock(time.perf_counter() - started)}; "
                   f"logs in {logs}")
    compare_sweep(combinations, results)
    failed = [c for c in combinations if c.status == "failed"]
    if failed:
        raise RunError(f"{len(failed)} of {len(combinations)} run(s) failed: "
                       + "; ".join(f"{c.label} (log {c.log})" for c in failed[:3]))


def compare_sweep(combinations: list, results: str) -> None:
    """Ends the sweep with the `mtl compare` table of its runs (done before or trained now);
    a table that cannot be made is a warning: the runs themselves are fine."""
    from mtl_runner.commands.inspect import compare

    paths = [str(c.run_path) for c in combinations
             if c.status in ("done", "completed") and c.run_path is not None]
    if not paths:
        return
    click.echo("")
    try:
        click.get_current_context().invoke(compare, run_refs=tuple(paths), results=results)
    except MtlError as error:
        click.echo(f"Warning: cannot compare the sweep: {error.format_message()}", err=True)
