"""One definition of "the same run", used wherever a completed run is reused instead of
trained again: `mtl train --seeds N --baselines` (the multi-task runs and the baselines),
`mtl sweep` (combinations already done) and `run:NAME` weight references.

Two runs are the same when they share

- the resolved recipe (defaults filled in, overrides applied; the seed, and any split or fold
  setting, are part of it): run.json's `recipe_sha256`, or for older runs the SHA-256 of their
  recipe.yaml,
- the role (`mtl`, `baseline:<task>`),
- the code version (`versions.mtl` in run.json; a run that did not record one matches nothing).

Only `completed` runs are ever reused.

Example:
    >>> key = RunIdentity(recipe_digest(text), "mtl", code_version())
    >>> find_completed(results, key)
    PosixPath('results/20260101-120000-tiny')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """What makes two runs the same run."""

    recipe_sha256: str
    role: str
    code_version: str | None


def recipe_digest(text: str) -> str:
    """SHA-256 of a resolved recipe's text (the same digest run.json records)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolved_text(recipe_dict: dict[str, Any]) -> str:
    """A resolved recipe dict as `mtl train` writes it to recipe.yaml."""
    import yaml

    return yaml.safe_dump(recipe_dict, sort_keys=False, allow_unicode=True)


def code_version() -> str:
    from mtl_runner import __version__

    return __version__


def identity_of(path: Path, info: dict[str, Any] | None = None) -> RunIdentity | None:
    """The identity of the run in `path`, or None when its files cannot be read."""
    try:
        info = info if info is not None else json.loads((path / "run.json").read_text())
        digest = info.get("recipe_sha256")
        if not isinstance(digest, str):
            digest = recipe_digest((path / "recipe.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, AttributeError):
        return None
    versions = info.get("versions")
    version = versions.get("mtl") if isinstance(versions, dict) else None
    return RunIdentity(digest, str(info.get("role") or "mtl"), version)


def completed_runs(results: str | Path) -> Iterator[tuple[Path, dict[str, Any], RunIdentity]]:
    """(folder, run.json, identity) of every completed run in `results`, in folder order."""
    results = Path(results)
    if not results.is_dir():
        return
    for path in sorted(results.iterdir()):
        try:
            info = json.loads((path / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict) or info.get("status") != "completed":
            continue
        identity = identity_of(path, info)
        if identity is not None:
            yield path, info, identity


def find_completed(results: str | Path, wanted: RunIdentity) -> Path | None:
    """The first completed run in `results` that is the same run as `wanted`, if any."""
    if wanted.code_version is None:
        return None
    for path, _, identity in completed_runs(results):
        if identity == wanted:
            return path
    return None


def identity_for(recipe_text: str, role: str = "mtl") -> RunIdentity:
    """The identity a run of this resolved recipe text would have with the current code."""
    return RunIdentity(recipe_digest(recipe_text), role, code_version())
