"""The `mtl` command line.

Each command is a thin front on the pipeline recipe → data → model → train → run directory.
TensorFlow is imported only inside the commands that train: `--help`, `validate` and
`schema` stay fast.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from pathlib import Path

import click

from mtl_runner import __version__

DEFAULT_RESULTS = "results"

results_option = click.option(
    "--results", "results", envvar="MTL_RESULTS", default=DEFAULT_RESULTS, show_default=True,
    type=click.Path(file_okay=False), help="Results folder (or set MTL_RESULTS).")
set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a recipe key, e.g. --set training.epochs=5 (repeatable).")


DEBUG_VARIABLE = "MTL_DEBUG"


class MtlGroup(click.Group):
    """The `mtl` group: whatever a command raises ends as `Error: ...` lines, never a traceback.

    `MtlError`s (exit 2 for bad input, 1 for a failure) pass through. An `OSError` — a full
    disk, a file that cannot be written, standard output closed or full (`mtl runs >
    /dev/full`) — becomes one line naming the path, exit 1; a closed pipe (`mtl runs | head
    -1`) ends quietly with exit 1, as click does. Any other exception is a bug: one line that
    says so and how to see the traceback (`MTL_DEBUG=1`), exit 1.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                SystemExit, KeyboardInterrupt):
            raise
        except Exception as error:  # noqa: BLE001 - the last resort of every command
            if os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0"):
                raise
            if isinstance(error, OSError) and error.errno == errno.EPIPE:
                raise  # click's own handling: quiet, exit 1
            raise last_resort_error(error, ctx) from None


def on_stdout(error: BaseException) -> bool:
    """Whether `error` was raised writing standard output (by `click.echo`, help included);
    if so, standard output is pointed at /dev/null, so that Python's final flush does not
    fail again with a message of its own."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__) if error.__traceback__ else []
    if not (frames and frames[-1].name in ("echo", "flush", "write")
            and "click" in Path(frames[-1].filename).parts):
        return False
    silence_stdout()
    return True


def silence_stdout() -> None:
    """Points standard output at /dev/null (after a write to it failed), so that later writes
    and Python's final flush do not fail again with a message of their own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


class Console:
    """`click.echo` for training: a full or closed standard output does not stop a run.

    The first failed write prints one warning on standard error; the run goes on silently and
    completes, and `check` then ends the command with exit code 1 saying so.
    """

    def __init__(self) -> None:
        self.failure: OSError | None = None

    def __call__(self, message: str = "", **options) -> None:
        if self.failure is not None and not options.get("err"):
            return
        try:
            click.echo(message, **options)
        except OSError as error:
            if options.get("err"):
                return
            self.failure = error
            silence_stdout()
            try:
                click.echo(f"Warning: cannot write to standard output ({error.strerror or error}); "
                           "training goes on without progress lines", err=True)
            except OSError:
                pass

    def check(self, done: str) -> None:
        """Raises RunError (exit 1) if standard output failed during the work."""
        from mtl_runner.errors import RunError

        if self.failure is not None:
            raise RunError(f"{done}, but standard output could not be written: "
                           f"{self.failure.strerror or self.failure}")


def last_resort_error(error: Exception, ctx: click.Context) -> click.ClickException:
    """The one-line error for an exception no command turned into an `MtlError`."""
    from mtl_runner.errors import RunError

    command = f"mtl {ctx.invoked_subcommand or ''}".strip()
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or type(error).__name__
        if error.filename is None and on_stdout(error):
            return RunError(f"{command}: cannot write to standard output: {reason}")
        paths = " → ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        where = f" {paths}" if paths else ""
        advice = {errno.EACCES: " Check its permissions, or choose another folder.",
                  errno.EPERM: " Check its permissions, or choose another folder.",
                  errno.EROFS: " Choose a writable folder.",
                  errno.ENOSPC: " Free some space, or choose another folder.",
                  errno.ENOTDIR: " A part of the path is a file, not a folder.",
                  errno.EISDIR: " Give a file, not a folder."}.get(error.errno, "")
        return RunError(f"{command}: cannot access{where}: {reason}.{advice}")
    text = str(error).splitlines()[0][:300] if str(error) else ""
    return RunError(f"{command}: unexpected {type(error).__name__}{': ' + text if text else ''}. "
                    f"This is a bug in mtl {__version__}; please report it, with the output of "
                    f"the same command run with {DEBUG_VARIABLE}=1 (it shows the traceback).")


@click.group(cls=MtlGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    from mtl_runner.results.run_dir import check_name
    from mtl_runner.training.run import train as run_training

    if name is not None:
        check_name(name)
    console = Console()
    run = run_training(loaded, results, name=name, command=["mtl", *sys.argv[1:]], echo=console)
    console.check(f"run {run.run_id} completed ({run.path})")


def resume_run(ref: str, results: str, overrides: tuple[str, ...]) -> None:
    """`mtl train --resume RUN`: continue a run from its last checkpoint, in the same folder."""
    from pathlib import Path

    import yaml

    from mtl_runner.errors import UsageError
    from mtl_runner.recipe import validate_recipe
    from mtl_runner.results import RunDirectory
    from mtl_runner.results.reader import effective_status, resolve_run
    from mtl_runner.training.device import import_tensorflow

    import_tensorflow()  # first, so that its start-up lines are captured (checkpoints import Keras)
    from mtl_runner.training.checkpoints import ResumePoint, check_history
    from mtl_runner.training.cluster import ClusterRole
    from mtl_runner.results.identity import recipe_digest
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
    text = run.file("recipe.yaml").read_text(encoding="utf-8")
    recorded = info.get("recipe_sha256")
    if recorded and recipe_digest(text) != recorded:
        raise UsageError(f"run {run.run_id} cannot be resumed: {run.file('recipe.yaml')} was edited "
                         "after the run started (its sha256 differs from run.json's recipe_sha256), "
                         "so its checkpoints may not fit the recipe. Put the file back as it was, or "
                         "train the edited recipe as a new run: mtl train "
                         f"{run.file('recipe.yaml')}")
    point = ResumePoint.read(run)  # an unusable checkpoint folder is refused before the run is touched
    if point is not None:
        check_history(run, point)
        check_same_version(run, info)
    data = yaml.safe_load(text)
    # data paths stay relative to the recipe the run started from
    loaded = validate_recipe(data, Path(info.get("recipe_file") or run.file("recipe.yaml")))
    console = Console()
    run_training(loaded, results, command=["mtl", *sys.argv[1:]], echo=console, resume=run)
    console.check(f"run {run.run_id} completed ({run.path})")


def check_same_version(run, info: dict) -> None:
    """A checkpoint holds variables by position; another mtl version may order them otherwise
    (0.2 split image models' heads from the shared variables), so it is refused, not guessed."""
    from mtl_runner import __version__
    from mtl_runner.errors import UsageError

    recorded = (info.get("versions") or {}).get("mtl")
    if recorded and recorded != __version__:
        raise UsageError(f"run {run.run_id} was checkpointed by mtl {recorded}, and this is mtl "
                         f"{__version__}, whose checkpoints may order variables differently. Resume "
                         f"it with mtl {recorded} (pip install 'mtl-runner=={recorded}'), or train "
                         f"it again: mtl train {run.file('recipe.yaml')}")


TRACKERS = ("tensorboard", "mlflow", "histograms")


def tracking_overrides(tracking: str | None) -> list[str]:
    """`--tracking KINDS` as the `--set` overrides of the recipe's tracking block."""
    from mtl_runner.errors import UsageError

    if tracking is None:
        return []
    kinds = {k.strip().lower() for k in tracking.split(",") if k.strip()}
    if not kinds <= {*TRACKERS, "none"}:
        raise UsageError(f"--tracking takes a comma list of {', '.join(TRACKERS)} or none. "
                         f"Received: {tracking!r}")
    return [f"tracking.{k}={'true' if k in kinds else 'false'}" for k in TRACKERS]


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
    from mtl_runner.results.run_dir import check_name

    if name is not None:  # before any work
        check_name(name)
    extra = tracking_overrides(tracking)
    if resume is not None:
        if recipe is not None:
            raise UsageError("give either a RECIPE or --resume RUN (the run has its recipe)")
        if extra:
            raise UsageError("--tracking cannot change a run being resumed; its recipe.yaml is what ran")
        resume_run(resume, results, overrides)
        return
    if recipe is None:
        raise UsageError("mtl train needs a RECIPE (or --resume RUN). Try: mtl train recipes/quickstart.yaml")
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

    console = Console()
    folders = train_plan(loaded, results, name, parse_seeds(seeds, loaded.recipe.seed), baselines,
                         ["mtl", *sys.argv[1:]], console)
    if ClusterRole.from_env().is_chief:  # another worker's runs went to temporary folders
        console(f"\n{len(folders)} runs in {results}; compare them with: "
                f"mtl compare --results {results}")
    console.check(f"{len(folders)} runs completed in {results}")


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
    from mtl_runner.results.run_dir import check_name

    if name is not None:  # before any work
        check_name(name)
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
    try:
        cli(prog_name="mtl")
    except Exception as error:  # noqa: BLE001 - raised outside a command (MtlGroup handles those)
        if os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0"):
            raise
        if isinstance(error, OSError) and on_stdout(error):
            message = f"cannot write to standard output: {error.strerror or error}"
        else:
            message = (f"unexpected {type(error).__name__}: {error}. Run again with "
                       f"{DEBUG_VARIABLE}=1 to see the traceback")
        try:
            click.echo(f"Error: mtl: {message}", err=True)
        except Exception:  # noqa: BLE001 - standard error itself is gone
            pass
        sys.exit(1)


if __name__ == "__main__":
    main()
