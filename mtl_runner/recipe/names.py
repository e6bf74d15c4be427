"""The names a run derives from task names and columns, and the rules that keep them distinct.

Training writes one history.csv column per (task, metric, split) and gives Keras one layer or
input per task and feature column. The names are built by joining strings (`<task>_<metric>`,
`val_` + …, `weight_<task>`, a column's sanitised input name), so two different things can
end up with one name: a task `loss` logs `loss_loss`, a task `weight` logs `weight_loss`,
the column of task `loss`'s weight. The rules here refuse, at validate time, every recipe
whose derived names would collide, so that each value lands in exactly one column and the
readers of history.csv (`task_of_column`) can tell the owner of every column back.

Example:
    >>> task_history_columns("species", ["accuracy"])[:2]
    ['species_loss', 'species_accuracy']
"""

from __future__ import annotations

import re
from typing import Iterable

from mtl_runner.errors import column_list, shown_name

# Columns every history.csv may have whatever the tasks (see training/callbacks.py and
# training/multitask_model.py): bookkeeping, the total loss, gradient telemetry.
GLOBAL_COLUMNS = ("epoch", "stage", "learning_rate", "loss", "val_loss", "grad_cosine",
                  "grad_conflict")
# Task names refused outright (they are global columns, or TensorBoard tag groups: total/loss,
# optimizer/learning_rate, weights/<task>, other/<key>) and prefixes refused with "_" after them
# (val_<column> is a validation column, weight_<task> a task weight, grad_* telemetry).
RESERVED_NAMES = ("epoch", "stage", "learning_rate", "lr", "loss", "total", "optimizer", "other",
                  "val", "weight", "weights", "grad")
RESERVED_PREFIXES = ("val_", "weight_", "weights_", "grad_")
# Names of layers every model may hold (models/inputs.py, models/images.py, models/build.py,
# the trunks). A task's output layer is named after the task; a feature's input after its column.
FIXED_LAYER_NAMES = ("numeric", "impute", "normalize", "missing_indicator", "features", "image",
                     "augment", "preprocess", "rescale", "pixels", "backbone", "decoder", "encoder",
                     "shared")
# What the layers each trunk names look like: shared_dense_0, mmoe_gate_<task>, cgc_..., ple_1_...
TRUNK_LAYER_PATTERNS = {"shared_bottom": r"shared_(dense|bn|act|dropout)_\d+", "mmoe": r"mmoe_.*",
                        "cgc": r"cgc_.*", "ple": r"ple_.*", "cross_stitch": r"cross_stitch_.*"}


def metric_suffixes() -> tuple[str, ...]:
    """Every suffix a task's history column can have: `loss` and every metric of any type."""
    from mtl_runner.tasks import TASK_TYPES

    names = {"loss"}
    for _, kind in TASK_TYPES.items():
        names.update(kind.metrics)
    return tuple(sorted(names))


def task_history_columns(task: str, metrics: Iterable[str]) -> list[str]:
    """The history.csv columns of one task: its loss and metrics, train and validation, and
    its effective loss weight (training only)."""
    own = [f"{task}_loss"] + [f"{task}_{m}" for m in metrics]
    return own + [f"val_{c}" for c in own] + [f"weight_{task}"]


def history_columns_by_owner(recipe) -> dict[str, list[str]]:
    """Every history.csv column a recipe's run writes, keyed by owner: a task name, or ""
    for the columns every run has."""
    from mtl_runner.tasks import TASK_TYPES

    owners: dict[str, list[str]] = {"": list(GLOBAL_COLUMNS)}
    for name, task in recipe.tasks.items():
        metrics = task.metrics or TASK_TYPES.get(task.type).default_metrics
        owners[name] = task_history_columns(name, metrics)
    return owners


def reserved_task_name(name: str) -> str | None:
    """Why a task may not be called `name`, or None when it may."""
    lower = name.lower()
    if lower in RESERVED_NAMES or lower.startswith(RESERVED_PREFIXES):
        return (f"'{name}' is reserved: task names may not be {', '.join(RESERVED_NAMES)}, nor "
                f"start with {', '.join(RESERVED_PREFIXES)}, since history.csv columns and "
                "TensorBoard tags built from them would mix with the ones every run writes "
                "(loss, val_<column>, weight_<task>, grad_*)")
    for metric in metric_suffixes():
        if metric.startswith(lower + "_"):  # one-task `macro_f1` would read as task macro's f1
            return (f"'{name}' is reserved: the metric {metric} starts with '{name}_', so its "
                    "column could not be told from this task's")
    trunk_layer = any(re.fullmatch(p, lower) for p in TRUNK_LAYER_PATTERNS.values())
    if lower in FIXED_LAYER_NAMES or trunk_layer:
        return (f"'{name}' is the name of a layer the model builds (reserved: "
                f"{', '.join(FIXED_LAYER_NAMES)}, and names starting with "
                "shared_, mmoe_, cgc_, ple_, cross_stitch_)")
    return None


def ambiguous_pair(first: str, second: str) -> str | None:
    """Why two task names cannot live together, or None.

    Column `a_macro_f1` could be task `a`'s macro_f1 or task `a_macro`'s f1; a reader splits
    `<task>_<suffix>` at the longest task name, which is right as long as no task is another
    one's name plus `_` plus the start of a metric name. Names equal but for case are refused
    too: files and TensorBoard tags do not always tell them apart.
    """
    if first.lower() == second.lower():
        return f"tasks '{first}' and '{second}' differ only in case"
    short, long = sorted((first, second), key=len)
    if not long.startswith(short + "_"):
        return None
    rest = long[len(short) + 1:]
    if rest == "probability" or rest.startswith("p_"):  # prediction columns of `mtl predict`
        return (f"task '{long}' is task '{short}' followed by '_{rest}', which `mtl predict` "
                f"names a column of task '{short}' ('{short}_probability', '{short}_p_<class>')")
    for suffix in metric_suffixes():
        if suffix == rest or suffix.startswith(rest + "_"):
            return (f"task '{long}' is task '{short}' followed by '_{rest}', so column "
                    f"'{short}_{suffix}' could belong to either")
    return None


def task_of_column(column: str, tasks: Iterable[str]) -> tuple[str, str, str] | None:
    """(task, metric, split) of a history.csv column, or None for a column of no task.

    `split` is "validation" for `val_` columns, else "train"; weights are `metric` "weight".
    Unambiguous for recipes that pass validation (see `ambiguous_pair`).

    Example:
        >>> task_of_column("val_age_group_accuracy", ["age", "age_group"])
        ('age_group', 'accuracy', 'validation')
    """
    tasks = sorted(tasks, key=len, reverse=True)
    if column.startswith("weight_") and column[len("weight_"):] in tasks:
        return column[len("weight_"):], "weight", "train"
    split, name = ("validation", column[4:]) if column.startswith("val_") else ("train", column)
    suffixes = metric_suffixes()
    for task in tasks:
        if name.startswith(task + "_") and name[len(task) + 1:] in suffixes:
            return task, name[len(task) + 1:], split
    return None


def layer_name_clashes(tasks: dict, head_depths: dict[str, int],
                       input_names: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(task, why) for each task whose output or head layers share a name with a model input.

    Args:
        tasks: the task names (a mapping or list).
        head_depths: per task, the number of Dense layers in its head.
        input_names: per input name, the columns that map to it.
    """
    clashes = []
    for task in tasks:
        own = {task} | {f"{task}_{kind}_{i}" for kind in ("dense", "dropout")
                        for i in range(head_depths.get(task, 0))}
        for name, columns in input_names.items():
            if name in own or any(name == f"{n}_onehot" for n in own):
                clashes.append((task, f"feature column {shown_name(columns[0])} becomes the model "
                                      f"input '{name}', the name of a layer of task '{task}'"))
    return clashes


def input_name_clashes(input_names: dict[str, list[str]], trunk: str) -> list[tuple[str, str]]:
    """(column, why) for feature columns whose Keras input names collide with another's, or
    with a layer the model builds (fixed names, the trunk's layers, one-hot layers)."""
    pattern = TRUNK_LAYER_PATTERNS.get(trunk)
    clashes = []
    for name, columns in input_names.items():
        if len(columns) > 1:
            clashes.append((columns[1], f"feature columns {column_list(columns, 5)} "
                                        f"all become the model input '{name}' (characters other "
                                        "than letters, digits and _ turn into _)"))
        elif (name in FIXED_LAYER_NAMES and name != "shared") or (
                pattern and re.fullmatch(pattern, name)) or (
                name.endswith("_onehot") and name[: -len("_onehot")] in input_names):
            clashes.append((columns[0], f"feature column {shown_name(columns[0])} becomes the "
                                        f"model input '{name}', the name of a layer the model "
                                        "builds"))
    return clashes
