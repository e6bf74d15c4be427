"""One definition of "the same run", used wherever a completed run is reused instead of
trained again: `mtl train --seeds N --baselines` (the multi-task runs and the baselines),
`mtl sweep` (combinations already done) and `run:NAME` weight references.

Two runs are the same when they share

- the resolved recipe (defaults filled in, overrides applied; the seed, and any split or fold
  setting, are part of it): run.json's `recipe_sha256`, or for older runs the SHA-256 of their
  recipe.yaml,
- the role (`mtl`, `baseline:<task>`),
- the code version (`versions.mtl` in run.json; a run that did not record one is the same as
  no other run, not even one like it: nothing says the same code trained them).

Only `completed` runs are ever reused. `resolved_text` is also what `mtl train` writes to
recipe.yaml, so the identity a planned run is given here is, by construction, the one its
run.json will record.

Example:
    >>> wanted = run_identity(loaded.recipe, "mtl")
    >>> find_same_run(completed_runs("results"), wanted)
    PosixPath('results/20260101-120000-tiny')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from mtl_runner import __version__

if TYPE_CHECKING:  # only for the annotation: results does not need the recipe package
    from pydantic import BaseModel

CompletedRun = tuple[Path, dict[str, Any], "RunIdentity"]


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """What makes two runs the same run."""

    recipe_sha256: str
    role: str
    code_version: str | None

    def same_run(self, other: RunIdentity) -> bool:
        """Whether `other` is the same run. An identity without a code version is the same
        as none, itself included: an equal recipe trained by unknown code proves nothing."""
        return self.code_version is not None and self == other


def resolved_text(recipe: BaseModel | dict[str, Any]) -> str:
    """A resolved recipe (the pydantic model, or its `model_dump(mode="json")`) as recipe.yaml
    holds it; `mtl train` writes this text and records its digest."""
    import yaml

    data = recipe if isinstance(recipe, dict) else recipe.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def recipe_digest(text: str) -> str:
    """SHA-256 of a resolved recipe's text (the digest run.json records as `recipe_sha256`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_identity(recipe: BaseModel | dict[str, Any], role: str = "mtl") -> RunIdentity:
    """The identity a run of this resolved recipe, in this role, has with the current code."""
    return RunIdentity(recipe_digest(resolved_text(recipe)), role, __version__)


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


def completed_runs(results: str | Path) -> Iterator[CompletedRun]:
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


def find_same_run(runs: Iterable[CompletedRun], wanted: RunIdentity) -> Path | None:
    """The first of `runs` (from `completed_runs`) that is the same run as `wanted`, if any."""
    for path, _, identity in runs:
        if wanted.same_run(identity):
            return path
    return None
