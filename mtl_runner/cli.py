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


name_option = click.option("--name", default=None, help="Run name (letters, digits, '._-'); "
                           "default: the recipe's name.")


def train_loaded(loaded, results: str, name: str | None) -> None:
    """Runs a validated recipe (the common end of `train` and `finetune`)."""
    from mtl_runner.errors import UsageError
    from mtl_runner.results.run_dir import RUN_NAME
    from mtl_runner.training.run import train as run_training

    if name is not None and not RUN_NAME.match(name):
        raise UsageError(f"--name may hold only letters, digits, '.', '_' and '-'. Received: {name!r}")
    run_training(loaded, results, name=name, command=["mtl", *sys.argv[1:]], echo=click.echo)


def resume_run(ref: str, results: str, overrides: tuple[str, ...]) -> None:
    """`mtl train --resume RUN`: continue a run from its last checkpoint, in the same folder."""
    from pathlib import Path

    import yaml

    from mtl_runner.errors import UsageError
    from mtl_runner.recipe import validate_recipe
    from mtl_runner.results import RunDirectory
    from mtl_runner.results.reader import effective_status, resolve_run
    from mtl_runner.training.cluster import ClusterRole
    from mtl_runner.training.run import train as run_training

    run = RunDirectory(resolve_run(ref, results))
    info = run.read_json()
    status = effective_status(info)
    # another worker of a multi-worker run: the chief may already have marked it running again
    if ClusterRole.from_env().is_chief and status in ("completed", "running"):
        raise UsageError(f"run {run.run_id} is {status}; only failed, interrupted or crashed runs "
                         "can be resumed")
    if overrides:
        raise UsageError("--set cannot change a run being resumed; its recipe.yaml is what ran")
    data = yaml.safe_load(run.file("recipe.yaml").read_text())
    # data paths stay relative to the recipe the run started from
    loaded = validate_recipe(data, Path(info.get("recipe_file") or run.file("recipe.yaml")))
    run_training(loaded, results, command=["mtl", *sys.argv[1:]], echo=click.echo, resume=run)


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False), required=False)
@set_option
@results_option
@name_option
@click.option("--seeds", default=None, metavar="N|S1,S2,...",
              help="Train once per seed: N seeds counting from the recipe's, or a list.")
@click.option("--baselines", is_flag=True, help="Also train every task alone (role "
              "baseline:<task>), reusing identical completed baselines.")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default=None,
              help="Where to train (runtime.device); auto uses every visible GPU.")
@click.option("--gpus", default=None, metavar="0,1", help="GPU indices to use (runtime.gpus).")
@click.option("--resume", default=None, metavar="RUN",
              help="Continue an interrupted, failed or crashed run from its last checkpoint.")
@click.option("--tracking", default=None, metavar="KINDS",
              help="Trackers, a comma list of tensorboard, mlflow, histograms, or none "
              "(default: tensorboard; also MTL_TRACKING).")
def train(recipe: str | None, overrides: tuple[str, ...], results: str, name: str | None,
          seeds: str | None, baselines: bool, device: str | None, gpus: str | None,
          resume: str | None, tracking: str | None) -> None:
    """Train the multi-task model a RECIPE describes; write a run folder under --results."""
    from mtl_runner.errors import UsageError
    from mtl_runner.recipe import load_recipe
    from mtl_runner.results.run_dir import RUN_NAME

    extra = []
    if tracking is not None:  # becomes the recipe's tracking block, like --set
        kinds = {k.strip().lower() for k in tracking.split(",") if k.strip()}
        known = ("tensorboard", "mlflow", "histograms")
        if not kinds <= {*known, "none"}:
            raise UsageError(f"--tracking takes a comma list of {', '.join(known)} or none. "
                             f"Received: {tracking!r}")
        extra += [f"tracking.{k}={'true' if k in kinds else 'false'}" for k in known]
    if resume is not None:
        if recipe is not None:
            raise UsageError("give either a RECIPE or --resume RUN (the run has its recipe)")
        if extra:
            raise UsageError("--tracking cannot change a run being resumed; its recipe.yaml is what ran")
        resume_run(resume, results, overrides)
        return
    if recipe is None:
        raise UsageError("mtl train needs a RECIPE (or --resume RUN). Try: mtl train recipes/quickstart.yaml")
    if name is not None and not RUN_NAME.match(name):  # before any work
        raise UsageError(f"--name may hold only letters, digits, '.', '_' and '-'. Received: {name!r}")
    if device:
        extra.append(f"runtime.device={device}")
    if gpus:
        extra.append(f"runtime.gpus=[{gpus}]")
    loaded = load_recipe(recipe, [*extra, *overrides])
    if seeds is None and not baselines:
        train_loaded(loaded, results, name)
        return
    from mtl_runner.training.plan import parse_seeds, train_plan

    from mtl_runner.training.cluster import ClusterRole

    folders = train_plan(loaded, results, name, parse_seeds(seeds, loaded.recipe.seed), baselines,
                         ["mtl", *sys.argv[1:]], click.echo)
    if ClusterRole.from_env().is_chief:  # another worker's runs went to temporary folders
        click.echo(f"\n{len(folders)} runs in {results}; compare them with: "
                   f"mtl compare --results {results}")


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False), required=False)
@click.option("--backbone", default=None, help="Backbone: resnet50 (default), resnet101, "
              "mobilenet_v2, efficientnet_b0, convnext_tiny.")
@click.option("--data", "data", default=None, help="A folder of class subfolders, or a "
              ".csv/.parquet/.npz file with an image column and label columns.")
@click.option("--weights", default=None, help="imagenet (default; downloads once), none, a "
              "weights FILE, or run:RUN (the backbone of an earlier run).")
@click.option("--image-size", type=click.IntRange(8, 4096), default=None,
              help="Side images are resized to (default 224).")
@click.option("--epochs", default=None, help="N, or WARMUP,FINETUNE epochs (default 5).")
@click.option("--unfreeze", default=None, help="What the second stage trains: all (default), "
              "N last backbone layers, N%, or a layer-name pattern.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-3,
              show_default=True, help="Warm-up learning rate; fine-tuning uses 1/100 of it.")
@click.option("--label", "labels", multiple=True, help="Label column of a table (repeatable: "
              "one classification head each). Default: label.")
@click.option("--image-column", default="image", show_default=True, help="Column of image paths "
              "or arrays.")
@click.option("--cache/--no-cache", default=None, help="Cache backbone features in frozen stages "
              "(default: on).")
@click.option("--seed", type=int, default=0, show_default=True)
@set_option
@results_option
@name_option
def finetune(recipe: str | None, backbone: str | None, data: str | None, weights: str | None,
             image_size: int | None, epochs: str | None, unfreeze: str | None,
             learning_rate: float, labels: tuple[str, ...], image_column: str, cache: bool | None,
             seed: int, overrides: tuple[str, ...], results: str, name: str | None) -> None:
    """Fine-tune a pretrained backbone: a frozen warm-up of new heads, then unfreezing.

    \b
    mtl finetune --backbone resnet50 --data images/ --image-size 96
    mtl finetune recipes/finetune_offline.yaml --epochs 2,3
    """
    from pathlib import Path

    from mtl_runner.errors import UsageError
    from mtl_runner.finetune import finetune_recipe, flag_overrides
    from mtl_runner.recipe import load_recipe, validate_recipe

    if recipe is not None:
        if data is not None:
            raise UsageError("give either a RECIPE or --data, not both (the recipe names its data)")
        extra = flag_overrides(backbone, weights, image_size, epochs, unfreeze, cache)
        loaded = load_recipe(recipe, [*extra, *overrides])
    else:
        if data is None:
            raise UsageError("mtl finetune needs --data PATH (or a RECIPE). "
                             "Example: mtl finetune --backbone resnet50 --data images/")
        built = finetune_recipe(backbone or "resnet50", data, weights or "imagenet", image_size,
                                epochs or "5", unfreeze or "all", learning_rate, labels,
                                image_column, cache is not False, seed)
        loaded = validate_recipe(built, Path("mtl-finetune-flags"), overrides=overrides)
    train_loaded(loaded, results, name)


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
    backbone = (f"; backbone: {r.model.backbone.name} (weights {r.model.backbone.weights})"
                if r.model.backbone else "")
    stages = (f"; stages: {', '.join(f'{st.name} ({st.trainable}, {st.epochs} epochs)' for st in r.training.stages)}"
              if r.training.stages else "")
    click.echo(f"{recipe}: OK. {len(r.tasks)} task(s): {tasks}; data: {r.data.source} "
               f"{source}{rows}{backbone}; trunk: {r.model.trunk.type}; weighting: "
               f"{r.weighting.name}{stages}.")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of a recipe (for editor completion and validation)."""
    from mtl_runner.recipe.schema import Recipe

    document = Recipe.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "mtl recipe"
    click.echo(json.dumps(document, indent=2))


from mtl_runner.commands.inspect import compare, runs, show  # noqa: E402
for _command in (runs, show, compare): cli.add_command(_command)
from mtl_runner.commands.doctor import doctor  # noqa: E402
cli.add_command(doctor)
from mtl_runner.commands.use import evaluate, export, predict  # noqa: E402
for _command in (evaluate, predict, export): cli.add_command(_command)
from mtl_runner.commands.sweep import sweep  # noqa: E402
cli.add_command(sweep)


def main() -> None:
    cli(prog_name="mtl")


if __name__ == "__main__":
    main()
