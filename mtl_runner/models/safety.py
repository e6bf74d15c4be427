"""What in a `.keras` file would run Python code when loaded: refused, and said so.

mtl loads models with Keras' `safe_mode=True`, which refuses a `Lambda` layer holding a Python
lambda, and fails with an unrelated-looking `TypeError` on one holding a named function.
Models that mtl trains have no `Lambda` layer, so one in a run's model.keras means the file
came from elsewhere; `code_layers` finds them without importing Keras, for a clear message.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

CODE_LAYERS = ("Lambda",)


def code_layers(path: str | Path) -> list[str]:
    """Names of the layers in a `.keras` file that hold Python code (`Lambda`), in order.

    Returns [] when the file is not a readable .keras archive (loading then says why).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") in CODE_LAYERS and isinstance(node.get("config"), dict):
                found.append(f"{node['class_name']} '{node['config'].get('name', '?')}'")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def unsafe_model_message(path: str | Path, layers: list[str]) -> str:
    """The one-line refusal for a model file holding code."""
    more = f" (and {len(layers) - 1} more)" if len(layers) > 1 else ""
    return (f"cannot load the model {path}: it holds a {layers[0]} layer{more}, Python code "
            f"that Keras' safe mode refuses to run when loading (mtl never runs code from a "
            f"model file). mtl's own models have no Lambda layers: was the file replaced? "
            f"Train the run again to get a model mtl can use")
