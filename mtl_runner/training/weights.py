"""Loading a backbone's weights from a file or from an earlier run (`run:RUN`)."""

from __future__ import annotations

from pathlib import Path

import keras

from mtl_runner.errors import MtlError, RunError
from mtl_runner.models.images import encoder_and_backbone
from mtl_runner.results.identity import completed_runs
from mtl_runner.results.reader import resolve_run


def find_run(ref: str, results: str | Path) -> Path:
    """An earlier run by id, unique id prefix, path — or, failing those, the latest completed
    run whose name or recipe name is `ref`, provided all such runs are the same run
    (`mtl_runner.results.identity`); otherwise the reference is ambiguous.

    Raises:
        RunError: no run matches, or the name matches different runs.
    """
    try:
        return resolve_run(ref, results)
    except MtlError as error:
        named = [(info.get("started_at") or "", path, identity)
                 for path, info, identity in completed_runs(results)
                 if ref in (info.get("name"), info.get("recipe_name"))]
        if not named:
            raise RunError(f"weights run:{ref}: {error.format_message()}") from None
        first = named[0][2]
        if len(named) > 1 and not all(first.same_run(identity) for _, _, identity in named):
            ids = ", ".join(path.name for _, path, _ in sorted(named)[-4:])
            raise RunError(f"weights run:{ref}: {len(named)} completed runs are named {ref!r} "
                           f"but differ in recipe, role or code version, or record none "
                           f"({ids}); name one by its id: run:RUN_ID") from None
        return max(named)[1]


def load_backbone_weights(model: keras.Model, config, results: str | Path) -> str | None:
    """Fills the backbone from `config.weights` when it names a file or a run.

    Returns:
        The id of the run the weights came from, or None.

    Raises:
        RunError: the file or run cannot be read, or its backbone does not fit this one.
    """
    weights = config.weights
    if weights in ("imagenet", "none"):
        return None
    _, backbone = encoder_and_backbone(model)
    if weights.startswith("run:"):
        path = find_run(weights[4:], results)
        try:
            earlier = keras.saving.load_model(path / "model.keras", compile=False, safe_mode=True)
        except Exception as error:  # noqa: BLE001
            raise RunError(f"cannot load {path / 'model.keras'}: {error}") from None
        _, source = encoder_and_backbone(earlier)
        if source is None:
            raise RunError(f"run {path.name} has no backbone to start from (its recipe has no "
                           f"model.backbone)")
        copy_weights(source, backbone, f"run {path.name}")
        return path.name
    file = Path(weights).expanduser()
    if not file.is_file():
        raise RunError(f"weights file not found: {file}. Use imagenet, none, a weights file or "
                       f"run:RUN")
    try:
        backbone.load_weights(file)
    except Exception as error:  # noqa: BLE001 - h5py and keras raise many kinds
        raise RunError(f"cannot load weights from {file} into {config.name}: "
                       f"{str(error).splitlines()[0][:200]}") from None
    return None


def copy_weights(source, target, origin: str) -> None:
    """Copies every weight of `source` into `target`, which must have the same shapes."""
    old, new = source.get_weights(), target.get_weights()
    mismatched = [i for i, (a, b) in enumerate(zip(old, new)) if a.shape != b.shape]
    if len(old) != len(new) or mismatched:
        raise RunError(f"the backbone of {origin} does not fit this one ({len(old)} vs {len(new)} "
                       f"weights; same backbone name and image channels are needed)")
    target.set_weights(old)
