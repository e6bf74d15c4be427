"""The `mtl` command line.

Each command is a thin front on the pipeline recipe → data → model → train → run directory.
TensorFlow is imported only inside the commands that train: `--help`, `validate` and
`schema` stay fast.
"""

from __future__ import annotations

import json
import sys

import click

from mtl_runner import __version__

DEFAULT_RESULTS = "results"

results_option = click.option(
    "--results", "results", envvar="MTL_RESULTS", default=DEFAULT_RESULTS, show_default=True,
    type=click.Path(file_okay=False), help="Results folder (or set MTL_RESULTS).")
set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe key, e.g. --set training.epochs=5 (repeatable).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mtl")
def cli() -> None:
    """mtl: multi-task learning and fine-tuning experiments on Keras, from YAML recipes.

    \b
    Start with:
      mtl validate recipes/quickstart.yaml
      mtl train recipes/quickstart.yaml
    """


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@set_option
@results_option
@click.option("--name", default=None, help="Run name (letters, digits, '._-'); default: the "
              "recipe's name.")
def train(recipe: str, overrides: tuple[str, ...], results: str, name: str | None) -> None:
    """Train the multi-task model a RECIPE describes; write a run folder under --results."""
    from mtl_runner.recipe import load_recipe
    from mtl_runner.results.run_dir import RUN_NAME
    from mtl_runner.errors import UsageError

    if name is not None and not RUN_NAME.match(name):
        raise UsageError(f"--name may hold only letters, digits, '.', '_' and '-'. Received: {name!r}")
    loaded = load_recipe(recipe, overrides)
    from mtl_runner.training.run import train as run_training

    run_training(loaded, results, name=name, command=["mtl", *sys.argv[1:]], echo=click.echo)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@set_option
def validate(recipe: str, overrides: tuple[str, ...]) -> None:
    """Check a RECIPE and its data without training; exit 2 listing every problem."""
    from mtl_runner.recipe import load_recipe

    loaded = load_recipe(recipe, overrides)
    r = loaded.recipe
    tasks = ", ".join(f"{n} ({t.type})" for n, t in r.tasks.items())
    source = r.data.name if r.data.source == "builtin" else r.data.path
    rows = f", {len(loaded.frame)} rows" if loaded.frame is not None else ""
    click.echo(f"{recipe}: OK. {len(r.tasks)} task(s): {tasks}; data: {r.data.source} "
               f"{source}{rows}; trunk: {r.model.trunk.type}; weighting: {r.weighting.name}.")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of a recipe (for editor completion and validation)."""
    from mtl_runner.recipe.schema import Recipe

    document = Recipe.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "mtl recipe"
    click.echo(json.dumps(document, indent=2))


def main() -> None:
    cli(prog_name="mtl")


if __name__ == "__main__":
    main()
