"""`mtl doctor [RECIPE]`: is this machine ready, and what would a recipe build?

Checks the environment (Python, TensorFlow and Keras versions, visible GPUs, which reduced
precisions the hardware supports, whether the results folder is writable). With a RECIPE it
also loads the data and builds the model on the CPU, without training, and prints the input
shapes, the parameters of the trunk and of each head, and the examples per task and split.
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


def parameter_groups(model, task_names: list[str]) -> dict[str, list[int]]:
    """[trainable, total] parameters of the inputs, backbone, trunk and each head."""
    from mtl_runner.models import images

    groups: dict[str, list[int]] = {}

    def add(group: str, layer) -> None:
        counts = groups.setdefault(group, [0, 0])
        counts[0] += sum(int(w.numpy().size) for w in layer.trainable_weights)
        counts[1] += sum(int(w.numpy().size) for w in layer.weights)

    def walk(layer) -> None:
        if layer.name == images.ENCODER:
            add("backbone", layer)
            return
        if layer.name == images.DECODER or layer is model:
            for inner in layer.layers:
                walk(inner)
            return
        if not layer.weights:
            return
        head = next((t for t in task_names if layer.name == t or layer.name.startswith(t + "_")
                     and not layer.name.endswith("_onehot")), None)
        if head is not None:
            add(f"head {head}", layer)
        elif layer.name in ("impute", "normalize", "missing_indicator", "augment") \
                or layer.name.endswith("_onehot"):
            add("inputs", layer)
        else:
            add("trunk", layer)

    walk(model)
    return groups


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

    loaded = load_recipe(recipe, overrides)
    config = loaded.recipe
    backbone = config.model.backbone
    if backbone is not None and backbone.weights == "imagenet":  # doctor never downloads
        config = config.model_copy(update={"model": config.model.model_copy(
            update={"backbone": backbone.model_copy(update={"weights": "none"})})})
    frame = loaded.frame if loaded.frame is not None else read_source(config.data, loaded.resolve_path)
    with tf.device("/CPU:0"):
        prepared = prepare(frame, config)
        model = build_model(config, prepared.spec, prepared.tasks, prepared.infos)

    click.echo(f"\nRecipe {recipe}: {len(frame)} rows, {len(prepared.tasks)} task(s), trunk "
               f"{config.model.trunk.type}" + (f", backbone {backbone.name}" if backbone else ""))
    if prepared.skipped:
        click.echo(f"  {len(prepared.skipped)} unreadable image(s) would be skipped, e.g. "
                   f"{prepared.skipped[0]}")
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
    click.echo("\nParameters")
    groups = parameter_groups(model, list(prepared.tasks))
    rows = [[group, trainable, total] for group, (trainable, total) in groups.items()]
    rows.append(["total", sum(g[0] for g in groups.values()), int(model.count_params())])
    click.echo(_indent(render(["part", "trainable", "total"], rows, "table")))
    if backbone is not None and backbone.weights == "imagenet":
        click.echo("  (built with random backbone weights: `mtl train` downloads the imagenet ones)")
    click.echo("\nExamples per task and split (labelled)")
    headers, rows = examples_table(prepared)
    click.echo(_indent(render(headers, rows, "table")))


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


__all__ = ["doctor"]
