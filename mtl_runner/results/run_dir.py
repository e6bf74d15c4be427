"""One folder per run, `results/<run_id>/`, written atomically, with a status lifecycle.

Layout (see README): recipe.yaml, run.json, history.csv, metrics.csv, model.keras.
`run.json["status"]` goes `running` → `completed` | `failed` | `interrupted`.
Nothing here imports TensorFlow, so `runs`, `show` and `compare` stay fast.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from mtl_runner.errors import RunError, UsageError

RUN_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
NAME_LIMIT = 64  # like a recipe's name; a run id adds 21 characters, a baseline "-<task>"
STATUSES = ("running", "completed", "failed", "interrupted")


def check_name(name: str, what: str = "--name", limit: int = NAME_LIMIT) -> str:
    """Returns `name` if it can name a run or an evaluation, else raises UsageError.

    A name becomes part of a file or folder name: 1 to `NAME_LIMIT` letters, digits, '.',
    '_' and '-', not starting with '.' (a hidden file) or '-' (read as an option).
    Checked before any work, so a bad name never costs a TensorFlow start.

    Raises:
        UsageError: the name is empty, longer than `limit`, or holds other characters.
    """
    shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
    if not name or len(name) > limit:
        raise UsageError(f"{what} must have 1 to {limit} characters. Received: {shown}"
                         + (f". Give a shorter {what}." if name else ""))
    if not RUN_NAME.match(name):
        raise UsageError(f"{what} may hold only letters, digits, '.', '_' and '-'. "
                         f"Received: {shown}")
    if name[0] in ".-":
        raise UsageError(f"{what} may not start with '.' (a hidden file) or '-'. Received: {shown}")
    return name


RUN_FILES = ("run.json", "recipe.yaml", "metrics.csv", "history.csv", "model.keras")


def check_new_output(path: str | Path, overwrite: bool, option: str = "--output",
                     folder: bool = False, make_parents: bool = False) -> Path:
    """Refuses, before any work, an output path that would replace something or cannot be made.

    Args:
        path: the file (or, with `folder`, the folder) a command is about to write.
        overwrite: whether the user allowed replacing an existing one (`--overwrite`).
        option: the option that named it, for the message.
        folder: the output is a folder (a SavedModel), not a file.
        make_parents: the command creates missing parent folders itself.

    Raises:
        UsageError: it exists (without `overwrite`), is of the other kind (a folder where a
            file goes), or its parent is missing (unless `make_parents`) or is a file.
    """
    path = Path(path)
    refuse_run_output(path, option, folder)
    if path.exists() or path.is_symlink():
        refuse_existing_output(path, overwrite, option, folder)
    check_output_parent(path, option, make_parents)
    return path


def refuse_run_output(path: Path, option: str, folder: bool) -> None:
    """What is never replaced, even with --overwrite: a run or results folder, a run's own
    file, and a non-empty folder that is no earlier export."""
    if path.is_dir() and ((path / "run.json").exists() or any(
            (child / "run.json").exists() for child in path.iterdir() if child.is_dir())):
        raise UsageError(f"{option} {path} is a run folder or a results folder; it is never "
                         "replaced. Give another path")
    if path.name in RUN_FILES and (path.parent / "run.json").exists():
        raise UsageError(f"{option} {path} is a file of the run in {path.parent}; it is never "
                         "replaced. Give another path")
    if folder and path.is_dir() and not (path / "saved_model.pb").exists() and any(path.iterdir()):
        raise UsageError(f"{option} {path} is a folder that holds no earlier export (no "
                         "saved_model.pb); it is never replaced, even with --overwrite. Give "
                         "another path")


def refuse_existing_output(path: Path, overwrite: bool, option: str, folder: bool) -> None:
    """An existing output may be replaced only with --overwrite, and only by one of its kind."""
    if path.is_dir() != folder:
        raise UsageError(f"{option} {path} is a {'file' if folder else 'folder'}; give the "
                         f"path of a {'folder' if folder else 'file'}")
    if not folder and not path.is_file():  # a device, a FIFO, a dangling link: never replaced
        raise UsageError(f"{option} {path} is not a regular file; give the path of a file")
    if not overwrite:
        raise UsageError(f"{option} {path} exists already; nothing was written. Remove it, "
                         f"give another {option}, or add --overwrite to replace it")


def check_output_parent(path: Path, option: str, make_parents: bool) -> None:
    """The output's folder must exist (or, with `make_parents`, some folder above it)."""
    parent = path.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise UsageError(f"{option} {path}: {above} is a file, not a folder")
            if above != parent and not make_parents:
                break
            return
    raise UsageError(f"{option} {path}: the folder {parent} does not exist; create it first")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_run_id(name: str, now: dt.datetime | None = None) -> str:
    """`<UTC yyyymmdd-HHMMSS>-<name>-<4 hex>`."""
    now = now or utc_now()
    return f"{now:%Y%m%d-%H%M%S}-{name}-{secrets.token_hex(2)}"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Writes a file so that readers see the old content or the new one, never a mix.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the
    temporary file is renamed over `path`.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise RunError(f"cannot write in {path.parent}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise RunError(f"cannot write {path}: {error.strerror}") from None


def _advice(error: OSError) -> str:
    """What to do about a failed write, as a sentence after the reason ("" when unsure)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return " Free some space, or choose another folder with --results."
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return " Choose a writable folder with --results."
    return ""


class RunDirectory:
    """The folder of one run.

    Create a new one with `RunDirectory.create(results, name)`; open an existing one with
    `RunDirectory(path)`.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, results: str | Path, name: str) -> "RunDirectory":
        """Makes a new, uniquely named run folder under `results` (never reuses one)."""
        if not RUN_NAME.match(name) or len(name) > 3 * NAME_LIMIT:  # a name + "-<task>"
            check_name(name, "the run name", 3 * NAME_LIMIT)
        results = Path(results)
        try:
            results.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"cannot create the results folder {results}: "
                           f"{error.strerror}.{_advice(error)}") from None
        for _ in range(100):
            path = results / new_run_id(name)
            try:
                path.mkdir()  # atomic: fails if another process took this id
                return cls(path)
            except FileExistsError:
                continue
            except OSError as error:
                raise RunError(f"cannot create a run folder in {results}: {error.strerror}. "
                               f"Choose a writable folder with --results.") from None
        raise RunError(f"could not find a free run id in {results}")

    def file(self, name: str) -> Path:
        return self.path / name

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.file(name), text)

    def write_json(self, name: str, data: Any) -> None:
        self.write_text(name, json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")

    def read_json(self, name: str = "run.json") -> dict[str, Any]:
        try:
            return json.loads(self.file(name).read_text())
        except (OSError, ValueError):
            return {}

    def write_frame(self, name: str, frame) -> None:
        self.write_text(name, frame.to_csv(index=False))

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merges fields into run.json and writes it back atomically."""
        info = self.read_json()
        info.update(fields)
        self.write_json("run.json", info)
        return info

    def add_warning(self, message: str) -> dict[str, Any]:
        """Appends one line to run.json `warnings` (each warning is recorded once)."""
        warnings = list(self.read_json().get("warnings") or [])
        if message not in warnings:
            warnings.append(message)
        return self.update(warnings=warnings)

    def finish(self, status: str, error: str | None = None, **fields: Any) -> dict[str, Any]:
        """Marks the run `completed`, `failed` or `interrupted`, with timings and the error."""
        assert status in STATUSES, status
        info = self.read_json()
        finished = utc_now()
        started = info.get("started_at")
        duration = (finished - dt.datetime.fromisoformat(started)).total_seconds() if started else None
        return self.update(status=status, error=error, finished_at=finished.isoformat(),
                           duration_s=None if duration is None else round(duration, 3), **fields)
