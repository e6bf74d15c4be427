"""`mtl finetune`: its flags become a recipe (a backbone and a two-stage schedule) — the same
pipeline as `mtl train` runs it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mtl_runner.errors import UsageError

DEFAULT_IMAGE_SIZE = 224


def parse_epochs(text: str) -> tuple[int, int]:
    """`5` → (5, 5) warm-up and fine-tuning epochs; `3,10` → (3, 10)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--epochs takes N or WARMUP,FINETUNE (positive integers). Received: {text!r}")
    numbers = [int(p) for p in parts]
    return (numbers[0], numbers[-1])


def parse_unfreeze(text: str) -> str:
    """`all`, `N` (last N backbone layers), `N%`, or a layer-name pattern → a `trainable` value."""
    if text == "all":
        return "all"
    if re.fullmatch(r"\d+%?", text):
        return f"top:{text}"
    return text


def data_block(path: str, image_column: str, size: int) -> dict[str, Any]:
    """The `data` block for a folder of class subfolders, or a csv/parquet/npz file."""
    source = Path(path)
    suffix = source.suffix.lower().lstrip(".")
    image = {"column": image_column, "size": size}
    if source.is_dir() or not suffix:
        return {"source": "image_dir", "path": path, "image": image}
    if suffix in ("csv", "parquet", "npz"):
        return {"source": suffix, "path": path, "image": image}
    raise UsageError(f"--data must be a folder of class subfolders or a .csv, .parquet or .npz "
                     f"file. Received: {path!r}")


def task_name(column: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", column)
    return name if re.match(r"^[A-Za-z]", name) else f"t_{name}"


def finetune_recipe(backbone: str, data: str, weights: str, image_size: int | None,
                    epochs: str, unfreeze: str, learning_rate: float, labels: tuple[str, ...],
                    image_column: str, cache: bool, seed: int) -> dict[str, Any]:
    """The recipe `mtl finetune --backbone ... --data ...` runs.

    One classification task per label column (`label` for a folder of class subfolders); a
    frozen warm-up of the heads at `learning_rate`, then fine-tuning of the unfrozen layers at
    `learning_rate / 100`. With `weights: none` there is nothing pretrained to protect: one
    stage trains every layer at `learning_rate` for all the epochs (a warm-up on random
    features, then a 100× smaller rate, would leave the backbone where it started).
    """
    warmup, finetune = parse_epochs(epochs)
    stages = [{"name": "warmup", "epochs": warmup, "learning_rate": learning_rate,
               "trainable": "heads"},
              {"name": "finetune", "epochs": finetune, "learning_rate": learning_rate / 100,
               "trainable": parse_unfreeze(unfreeze)}]
    if str(weights).lower() == "none":
        stages = [{"name": "train", "epochs": warmup + finetune, "learning_rate": learning_rate,
                   "trainable": "all"}]
    block = data_block(data, image_column, image_size or DEFAULT_IMAGE_SIZE)
    columns = labels or ("label",)
    return {
        "name": f"finetune-{backbone}".replace("_", "-"),
        "data": block,
        "tasks": {task_name(c): {"type": "classification", "label": c} for c in columns},
        "model": {
            "backbone": {"name": backbone, "weights": weights, "pooling": "avg"},
            "trunk": {"type": "shared_bottom", "units": []},
            "heads": {"units": []},
        },
        "training": {
            "batch_size": 32,
            "cache_features": cache,
            "early_stopping": {"monitor": "val_loss", "patience": 5},
            "stages": stages,
        },
        "seed": seed,
    }


def flag_overrides(backbone: str | None, weights: str | None, image_size: int | None,
                   epochs: str | None, unfreeze: str | None, cache: bool | None) -> list[str]:
    """Flags given with a RECIPE, as `--set` overrides of it."""
    overrides = []
    if backbone:
        overrides.append(f"model.backbone.name={backbone}")
    if weights:
        overrides.append(f"model.backbone.weights={weights}")
    if image_size:
        overrides.append(f"data.image.size={image_size}")
    if epochs:
        warmup, finetune = parse_epochs(epochs)
        overrides += [f"training.stages.0.epochs={warmup}", f"training.stages.1.epochs={finetune}"]
    if unfreeze:
        overrides.append(f"training.stages.1.trainable={parse_unfreeze(unfreeze)}")
    if cache is False:
        overrides.append("training.cache_features=false")
    return overrides
