"""`mtl doctor [RECIPE]`: is this machine ready, and what would a recipe build?

Checks the environment (Python, TensorFlow and Keras versions, visible GPUs, which reduced
precisions the hardware supports, whether the results folder is writable). With a RECIPE it
also loads the data (every source, when tasks bring their own) and builds the model on the
CPU, without training, and prints the input shapes, the parameters of the inputs, backbone,
trunk and each head that each stage trains (counted as training counts them, so each stage's
total is its `trainable_parameters` in run.json), and the examples per task and split.
TensorFlow is imported inside the command only.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from pathlib import Path

import click

from mtl_runner.commands import results_option
from mtl_runner.errors import MtlError, RunError
from mtl_runner.training.cluster import ClusterRole

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "avx_ne_convert")  # x86; "bf16" on Arm


def cpu_flags() -> set[str]:
    """The CPU's feature flags, from `lscpu` or /proc/cpuinfo (empty when neither answers)."""
    text = ""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        pass
    if "Flags:" not in text:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def writable(folder: Path) -> tuple[bool, str]:
    """Whether run folders can be made in `folder` (or, if it does not exist yet, where it
    would be made): tried by writing a file, since permissions alone miss read-only disks."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return False, f"{probe} is not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".mtl-doctor-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError as error:
        return False, f"cannot write in {probe}: {error.strerror}"
    return True, "writable" if probe == folder else f"will be created in {probe} (writable)"


def gpu_lines(tf) -> tuple[list[str], list[tuple[int, int]]]:
    """One line per visible GPU, and each one's compute capability."""
    lines, capabilities = [], []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        capability = tuple(details.get("compute_capability") or ())
        if len(capability) == 2:
            capabilities.append(capability)
        label = details.get("device_name", gpu.name)
        lines.append(f"{gpu.name}: {label}"
                     + (f" (compute capability {capability[0]}.{capability[1]})"
                        if len(capability) == 2 else ""))
    return lines, capabilities


def precision_lines(capabilities: list[tuple[int, int]], flags: set[str]) -> list[str]:
    """Which of float32, mixed_float16 and mixed_bfloat16 the hardware runs fast."""
    lines = ["float32: yes"]
    if capabilities:
        low = min(capabilities)
        lines.append(f"mixed_float16 on GPU: {'yes' if low >= (7, 0) else 'slow'} "
                     f"(tensor cores from compute capability 7.0)")
        lines.append(f"mixed_bfloat16 on GPU: {'yes' if low >= (8, 0) else 'no'} "
                     f"(from compute capability 8.0)")
    else:
        lines.append("mixed_float16: no GPU (on a CPU it is slower than float32)")
    bf16 = sorted(flags.intersection(CPU_BF16_FLAGS + ("bf16",)))
    lines.append("mixed_bfloat16 on CPU: " + (f"yes ({', '.join(bf16)})" if bf16 else
                                              "no native bfloat16 instructions found"))
    return lines


def parameter_table(model, task_names: list[str], stages: list,
                    batch_norm: str) -> tuple[list[str], list[list]]:
    """Trainable parameters of each part (inputs, backbone, trunk, each head) in each stage,
    and every parameter of the part.

    Each stage's trainable layers are chosen by `training.stages.set_trainable`, and its
    total is `training.stages.trainable_count`: what training records as the stage's
    `trainable_parameters` in run.json.

    Args:
        model: the built network (its layers' `trainable` flags are left as the last stage
            sets them).
        task_names: the tasks.
        stages: the recipe's stages (`training.stages.stage_plan`).
        batch_norm: the backbone's BatchNorm mode ("frozen" without a backbone).

    Returns:
        (headers, rows): `part`, one column per stage, `total`.
    """
    from mtl_runner.models.parts import network_parts, parameter_count
    from mtl_runner.training.stages import set_trainable, trainable_count

    groups = network_parts(model, task_names).groups()
    columns = []
    for stage in stages:
        set_trainable(model, stage.trainable, task_names, batch_norm)
        columns.append([*(parameter_count(layers, trainable=True) for layers in groups.values()),
                        trainable_count(model)])
    totals = [*(parameter_count(layers) for layers in groups.values()), int(model.count_params())]
    rows = [[part, *(column[i] for column in columns), totals[i]]
            for i, part in enumerate([*groups, "total"])]
    return ["part", *(stage.name for stage in stages), "total"], rows


def examples_table(prepared) -> tuple[list[str], list[list]]:
    """Labelled examples per task and split (a missing label does not count)."""
    import numpy as np

    splits = list(prepared.sizes)
    rows = [["(rows)", *(prepared.sizes[s] for s in splits)]]
    for task in prepared.tasks:
        counts = []
        for split in splits:
            mask = np.asarray(prepared.labels[split][task].mask)
            counts.append(int(mask.reshape(len(mask), -1).max(axis=1).sum()) if len(mask) else 0)
        rows.append([task, *counts])
    return ["task", *splits], rows


def cluster_line(cluster) -> str:
    if not cluster.multi_worker:
        return "this machine only (no TF_CONFIG with several workers)"
    return (f"{cluster.name} of {cluster.workers} workers (TF_CONFIG), "
            f"{'the chief: writes the run directory' if cluster.is_chief else 'not the chief'}")


@click.command("doctor")
@click.argument("recipe", type=click.Path(dir_okay=False), required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key, as for `mtl train`.")
@results_option
def doctor(recipe: str | None, overrides: tuple[str, ...], results: str) -> None:
    """Check the environment; with a RECIPE, load its data and build its model on the CPU
    (no training), printing input shapes, parameters per trunk and head, and examples per
    task and split."""
    from mtl_runner.commands.inspect import render
    from mtl_runner.training.device import import_tensorflow

    problems: list[str] = []
    tf = import_tensorflow()
    import keras

    click.echo("Environment")
    click.echo(f"  python      {platform.python_version()} ({platform.machine()})")
    click.echo(f"  tensorflow  {tf.__version__}")
    click.echo(f"  keras       {keras.__version__} (backend {keras.backend.backend()})")
    if tuple(int(p) for p in keras.__version__.split(".")[:3] if p.isdigit()) < (3, 13, 2):
        problems.append(f"keras {keras.__version__} is older than 3.13.2, which fixes known "
                        f"safe_mode bypasses; pip install 'keras>=3.13.2'")
    gpus, capabilities = gpu_lines(tf)
    click.echo(f"  gpus        {len(gpus) or 'none visible (training runs on the CPU)'}")
    for line in gpus:
        click.echo(f"    {line}")
    click.echo("  precision")
    for line in precision_lines(capabilities, cpu_flags()):
        click.echo(f"    {line}")
    try:
        cluster = ClusterRole.from_env()
        click.echo(f"  cluster     {cluster_line(cluster)}")
    except RunError as error:
        click.echo("  cluster     TF_CONFIG is unusable")
        problems.append(error.format_message())
    ok, how = writable(Path(results))
    click.echo(f"  results     {results}: {how}")
    if not ok:
        problems.append(f"the results folder {results} is not writable ({how}); "
                        f"choose another with --results")

    if recipe is not None:
        _describe_recipe(tf, recipe, overrides, render)

    if problems:
        raise MtlError("\n".join(problems))
    click.echo("\nNo problems found.")


def _describe_recipe(tf, recipe: str, overrides: tuple[str, ...], render) -> None:
    from mtl_runner.data.sources import read_source
    from mtl_runner.models.build import build_model
    from mtl_runner.recipe import load_recipe
    from mtl_runner.training.prepare import prepare
    from mtl_runner.training.stages import stage_plan

    loaded = load_recipe(recipe, overrides)
    config = loaded.recipe
    backbone = config.model.backbone
    if backbone is not None and backbone.weights == "imagenet":  # doctor never downloads
        config = config.model_copy(update={"model": config.model.model_copy(
            update={"backbone": backbone.model_copy(update={"weights": "none"})})})
    # one table per data source, as training reads them: tasks may bring their own data
    groups = config.data_groups()
    frames = loaded.frames or [read_source(block, loaded.resolve_path) for block, _ in groups]
    with tf.device("/CPU:0"):
        prepared = prepare(frames[0], config, frames)
        model = build_model(config, prepared.spec, prepared.tasks, prepared.infos)

    click.echo(f"\nRecipe {recipe}: {sum(len(f) for f in frames)} rows, {len(prepared.tasks)} "
               f"task(s), trunk {config.model.trunk.type}"
               + (f", backbone {backbone.name}" if backbone else ""))
    if len(groups) > 1:
        for (block, tasks), frame in zip(groups, frames):
            click.echo(f"  {block.path or block.name} ({block.source}): {len(frame)} rows, "
                       f"labels {', '.join(tasks)}")
    if prepared.skipped:
        click.echo(f"  {len(prepared.skipped)} unreadable image(s) would be skipped, e.g. "
                   f"{prepared.skipped[0]}")
    _describe_model(model, prepared, render)
    click.echo("\nParameters (trainable in each stage, and in all)")
    headers, rows = parameter_table(model, list(prepared.tasks), stage_plan(config),
                                    backbone.batch_norm_mode() if backbone else "frozen")
    click.echo(_indent(render(headers, rows, "table")))
    if backbone is not None and backbone.weights != "none":
        source = ("downloads the imagenet ones" if backbone.weights == "imagenet"
                  else f"loads them from {backbone.weights}")
        click.echo(f"  (built with random backbone weights: `mtl train` {source})")
    click.echo("\nExamples per task and split (labelled)")
    headers, rows = examples_table(prepared)
    click.echo(_indent(render(headers, rows, "table")))


def _describe_model(model, prepared, render) -> None:
    """The model's inputs and its outputs, one per task."""
    click.echo("\nInputs")
    shapes = [[tensor.name, str(tuple(tensor.shape)), str(tensor.dtype)] for tensor in model.inputs]
    click.echo(_indent(render(["input", "shape", "dtype"], shapes, "table")))
    click.echo("\nOutputs")
    tensors = model.output
    if not isinstance(tensors, dict):
        tensors = dict(zip(prepared.tasks, tensors if isinstance(tensors, (list, tuple)) else [tensors]))
    outputs = [[name, str(tuple(tensors[name].shape)) if name in tensors else "-",
                prepared.tasks[name].config.type] for name in prepared.tasks]
    click.echo(_indent(render(["task", "shape", "type"], outputs, "table")))


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


__all__ = ["doctor"]
