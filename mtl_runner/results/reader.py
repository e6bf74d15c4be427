"""Reading run directories back: robustly, quickly, and without TensorFlow or pandas.

`mtl runs`, `mtl show` and `mtl compare` read only the files a run writes (run.json,
recipe.yaml, metrics.csv, history.csv). A folder with a missing, truncated or garbled file is
reported in one line and skipped; the others are still read. A run still marked `running`
whose process is gone from this host is reported as `crashed`.

Example:
    >>> runs = scan_runs("results", warn=print)
    >>> [run.status for run in runs]
    ['completed', 'crashed']
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import functools
import json
import math
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from mtl_runner.errors import MtlError, RunError, UsageError, did_you_mean
from mtl_runner.reading import FileRefused, read_bytes_limited
from mtl_runner.results.run_dir import atomic_write

try:  # libyaml is ~10x faster; it matters when 200 recipes are read for one table
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

RUN_FILES = ("run.json", "recipe.yaml", "metrics.csv", "history.csv")
METRIC_COLUMNS = ("task", "metric", "split", "value")
Warn = Callable[[str], None]


class UnreadableRun(Exception):
    """A run directory that cannot be read; `str()` names the file and what is wrong."""


@dataclasses.dataclass
class MetricRow:
    """One line of metrics.csv."""

    task: str
    metric: str
    split: str
    value: float
    n: int | None = None


@dataclasses.dataclass
class Run:
    """What was read from one run directory.

    Attributes:
        path: the run folder.
        info: run.json as a dict.
        recipe: recipe.yaml as a nested dict.
        metrics: the rows of metrics.csv ([] when the run wrote none).
        status: run.json's status, or `crashed` for a run marked running whose process is gone.
    """

    path: Path
    info: dict[str, Any]
    recipe: dict[str, Any]
    metrics: list[MetricRow]
    status: str

    @property
    def id(self) -> str:
        return self.path.name  # unique in a results folder, even if run.json was copied

    @property
    def role(self) -> str:
        return str(self.info.get("role") or "mtl")

    @property
    def started_at(self) -> str:
        return str(self.info.get("started_at") or "")

    @property
    def seed(self) -> Any:
        return self.recipe.get("seed", self.info.get("seed"))

    @property
    def tasks(self) -> list[str]:
        """Task names in recipe order, then any others that metrics.csv mentions."""
        names = list((self.recipe.get("tasks") or {}).keys())
        for row in self.metrics:
            if row.task not in names:
                names.append(row.task)
        return names

    def flat_recipe(self) -> dict[str, Any]:
        """The recipe as dotted keys (computed once; do not modify it)."""
        return self._flat

    @functools.cached_property
    def _flat(self) -> dict[str, Any]:
        return flatten(self.recipe)

    def fields(self) -> dict[str, Any]:
        """Every key `--where` can filter on: dotted recipe keys, then run.json fields."""
        return self._fields

    @functools.cached_property
    def _fields(self) -> dict[str, Any]:
        fields = dict(self.flat_recipe())
        for key, value in self.info.items():
            if not isinstance(value, (dict, list)):
                fields[f"run.{key}"] = value
        fields.update(status=self.status, role=self.role, id=self.id,
                      recipe_name=self.info.get("recipe_name", self.recipe.get("name")))
        return fields

    def headline(self, split: str = "test") -> list[MetricRow]:
        """The first metric of each task on `split` (the task type's main metric)."""
        seen: dict[str, MetricRow] = {}
        for row in self.metrics:
            if row.split == split and row.task not in seen:
                seen[row.task] = row
        return list(seen.values())


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}`; lists stay values (`[64, 32]`)."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def pid_alive(pid: Any) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def effective_status(info: dict[str, Any], hostname: str | None = None) -> str:
    """run.json's status, except `crashed` for a running run whose pid is gone on this host.

    A run started on another host stays `running`: we cannot see its process from here.
    """
    status = str(info.get("status") or "unknown")
    if status != "running":
        return status
    if info.get("host") not in (None, hostname or socket.gethostname()):
        return status
    return status if pid_alive(info.get("pid")) else "crashed"


RUN_FILE_LIMIT = 256 * 2**20  # bytes: a run file larger than this is not one mtl wrote


def read_run_file(file: Path) -> str:
    """The text of a file in a run folder: a regular file of at most RUN_FILE_LIMIT bytes
    (a FIFO or a link to /dev/zero put there is refused, not read), or UnreadableRun."""
    try:
        return read_bytes_limited(file, RUN_FILE_LIMIT, "run file").decode("utf-8")
    except FileRefused as error:
        raise UnreadableRun(f"{file.name} is missing" if error.missing
                            else f"{file.name}: {error.message}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableRun(f"{file.name} cannot be read ({error})") from None


def read_history_file(file: Path):
    """history.csv as a DataFrame, read through `read_run_file`.

    Raises:
        ValueError: the file is unreadable (not a regular file, too large) or garbled.
    """
    import io

    import pandas as pd

    try:
        text = read_run_file(file)
    except UnreadableRun as error:
        raise ValueError(str(error)) from None
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"history.csv cannot be parsed ({str(error).splitlines()[0]})") from None


def _read_text(path: Path, name: str) -> str:
    """A run file's text, or UnreadableRun saying what is wrong with it."""
    return read_run_file(path / name)


def _read_run_json(path: Path) -> dict[str, Any]:
    text = _read_text(path, "run.json")
    try:
        info = json.loads(text)
    except ValueError as error:
        what = "is empty" if not text.strip() else f"is truncated or not JSON ({error})"
        raise UnreadableRun(f"run.json {what}") from None
    if not isinstance(info, dict):
        raise UnreadableRun(f"run.json holds a {type(info).__name__}, not an object")
    if "status" not in info:
        raise UnreadableRun("run.json has no 'status' (half-written?)")
    return info


class RecipeCache:
    """Parsed recipe.yaml files of a results folder, kept in `<results>/.mtl-recipes.json`.

    Building Python objects from YAML costs ~1.5 ms a recipe: most of `mtl compare`'s time
    over 1,000 runs. An entry is used only while its file's size and mtime are unchanged; the
    index is rewritten atomically and only when something changed, and a folder we cannot
    write in simply goes uncached.
    """

    NAME = ".mtl-recipes.json"
    VERSION = 1

    def __init__(self, results: Path):
        self.file = Path(results) / self.NAME
        self.entries: dict[str, list] = {}
        self.changed = False
        try:
            data = json.loads(read_run_file(self.file))
            if isinstance(data, dict) and data.get("version") == self.VERSION:
                self.entries = data.get("recipes") or {}
        except (OSError, ValueError, UnreadableRun):
            pass  # a cache: rebuilt when unreadable

    def read(self, path: Path) -> dict[str, Any]:
        try:
            stat = (path / "recipe.yaml").stat()
        except OSError:
            return _read_recipe(path)  # raises UnreadableRun naming the problem
        key = [stat.st_size, stat.st_mtime_ns]
        entry = self.entries.get(path.name)
        if isinstance(entry, list) and len(entry) == 3 and entry[:2] == key \
                and isinstance(entry[2], dict):
            return entry[2]
        recipe = _read_recipe(path)
        self.entries[path.name] = [*key, recipe]
        self.changed = True
        return recipe

    def save(self, keep: set[str]) -> None:
        """Writes the index back (entries of `keep` only), if anything changed."""
        stale = set(self.entries) - keep
        if not (self.changed or stale):
            return
        for name in stale:
            del self.entries[name]
        try:
            text = json.dumps({"version": self.VERSION, "recipes": self.entries}, default=str)
            atomic_write(self.file, text)
        except (MtlError, OSError, TypeError, ValueError):
            pass  # a cache: reading works without it


def _read_recipe(path: Path) -> dict[str, Any]:
    text = _read_text(path, "recipe.yaml")
    try:
        recipe = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise UnreadableRun(f"recipe.yaml is not valid YAML{where}") from None
    if not isinstance(recipe, dict):
        raise UnreadableRun("recipe.yaml does not hold a mapping")
    return recipe


def read_metrics(file: Path) -> list[MetricRow]:
    """Reads metrics.csv; raises UnreadableRun naming the first bad line."""
    text = read_run_file(file)
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise UnreadableRun("metrics.csv is empty")
    missing = [c for c in METRIC_COLUMNS if c not in header]
    if missing:
        raise UnreadableRun(f"metrics.csv lacks the column(s) {', '.join(missing)}")
    index = {name: header.index(name) for name in (*METRIC_COLUMNS, "n") if name in header}
    rows = []
    for line, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) != len(header):
            raise UnreadableRun(f"metrics.csv line {line} has {len(record)} fields, "
                                f"expected {len(header)} (truncated?)")
        raw = record[index["value"]]
        try:
            value = float(raw) if raw.strip() else math.nan
        except ValueError:
            raise UnreadableRun(f"metrics.csv line {line}: value {raw!r} is not a number") from None
        n = None
        if "n" in index and record[index["n"]].strip():
            try:
                n = int(float(record[index["n"]]))
            except ValueError:
                raise UnreadableRun(f"metrics.csv line {line}: n {record[index['n']]!r} "
                                    f"is not a number") from None
        rows.append(MetricRow(record[index["task"]], record[index["metric"]],
                              record[index["split"]], value, n))
    return rows


def read_run(path: str | Path, hostname: str | None = None,
             recipes: RecipeCache | None = None) -> Run:
    """Reads one run directory.

    A completed run must have run.json, recipe.yaml and metrics.csv; a run that did not
    complete may lack metrics.csv.

    Raises:
        UnreadableRun: a required file is missing, truncated or garbled.
    """
    path = Path(path)
    info = _read_run_json(path)
    recipe = recipes.read(path) if recipes is not None else _read_recipe(path)
    metrics_file = path / "metrics.csv"
    if metrics_file.exists():
        metrics = read_metrics(metrics_file)
    elif info.get("status") == "completed":
        raise UnreadableRun("metrics.csv is missing although the run is completed")
    else:
        metrics = []
    return Run(path, info, recipe, metrics, effective_status(info, hostname))


def looks_like_run(path: Path) -> bool:
    """A folder holding any of the files a run writes (an empty one is ignored silently)."""
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def scan_runs(results: str | Path, warn: Warn | None = None) -> list[Run]:
    """Every readable run under `results`, oldest first.

    Args:
        results: the results folder.
        warn: called with one line for each run folder that is skipped.
    """
    results = Path(results)
    if not results.is_dir():
        return []
    paths = []
    for path in sorted(results.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() and not inside(path, results):
            if warn is not None:
                warn(f"skipped {path}: a link to {os.path.realpath(path)}, outside {results}")
            continue
        if looks_like_run(path):
            paths.append(path)
    recipes = RecipeCache(results)
    runs = read_runs(paths, warn, recipes)
    recipes.save({run.path.name for run in runs})
    return runs


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, links followed, lies inside the folder `root`."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) == top


def read_runs(paths: Iterable[Path], warn: Warn | None = None,
              recipes: RecipeCache | None = None) -> list[Run]:
    """Reads the given run folders, warning about and skipping the unreadable ones."""
    hostname = socket.gethostname()
    runs = []
    for path in paths:
        try:
            runs.append(read_run(path, hostname, recipes))
        except UnreadableRun as problem:
            if warn is not None:
                warn(f"skipped {path}: {problem}")
    runs.sort(key=lambda run: (run.started_at, run.id))
    return runs


def resolve_run(ref: str, results: str | Path, allow_path: bool = True) -> Path:
    """The folder of RUN given as a path, a run id or a unique prefix of one.

    A run id is looked up inside `results` only: an id holding a path separator or `..` never
    matches, and a run folder that is a link to somewhere outside `results` is refused.

    Args:
        ref: the run id, prefix or path.
        results: the results folder.
        allow_path: whether `ref` may be a path (the user's own command line) rather than an
            id (e.g. a reference written in a recipe, which must stay inside `results`).

    Raises:
        UsageError: no run or several runs match, or the reference leaves `results`.
    """
    candidate = Path(ref)
    path_like = candidate.is_absolute() or len(candidate.parts) != 1 or ref in (".", "..")
    if path_like and not allow_path:
        raise UsageError(f"RUN {ref!r} must be a run id in {results}, not a path. "
                         f"See `mtl runs --results {results}`.")
    if allow_path and candidate.is_dir() and (candidate / "run.json").exists():
        return candidate
    results = Path(results)
    ids = run_ids(results)
    matches = [] if path_like else [ref] if ref in ids else [i for i in ids if i.startswith(ref)]
    if len(matches) == 1:
        found = results / matches[0]
        if not inside(found, results):
            raise UsageError(f"run folder {found} is a link to {os.path.realpath(found)}, "
                             f"outside {results}; refused")
        return found
    raise unresolved(ref, results, ids, matches)


def run_ids(results: Path) -> list[str]:
    """The names of the (not hidden) folders in `results`, sorted; [] when it is missing."""
    if not results.is_dir():
        return []
    return sorted(p.name for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))


def unresolved(ref: str, results: Path, ids: list[str], matches: list[str]) -> UsageError:
    """Why RUN `ref` names no single run: several match, a folder without run.json, or none."""
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        return UsageError(f"RUN {ref!r} matches {len(matches)} runs in {results}: {shown}. "
                          f"Give more of the id.")
    if Path(ref).is_dir():
        return UsageError(f"{ref} is a folder but not a run directory (no run.json)")
    where = (f"in {results}" if results.is_dir()
             else f"(the results folder {results} does not exist)")
    return UsageError(f"no run {ref!r} {where}.{did_you_mean(ref, ids)} "
                      f"See `mtl runs --results {results}`.")


def load_one(ref: str, results: str | Path) -> Run:
    """Resolves and reads one run for `mtl show`; a broken run.json is an error (exit 1)."""
    return read_named(resolve_run(ref, results))


def read_named(path: Path) -> Run:
    """Reads a run the user named (`mtl show RUN`, `mtl compare RUN ...`).

    Raises:
        RunError: a file of the run is missing, truncated or garbled (exit 1), unlike a
            folder met while scanning, which is skipped with a warning.
    """
    try:
        return read_run(path)
    except UnreadableRun as problem:
        raise RunError(f"cannot read {path}: {problem}") from None


# -- --where filters ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Where:
    """One `--where key=value` (or `key!=value`) filter; value may hold `*` wildcards."""

    key: str
    value: str
    negate: bool = False

    @classmethod
    def parse(cls, text: str) -> "Where":
        key, sep, value = text.partition("=")
        negate = key.endswith("!")
        key = key[:-1] if negate else key
        if not sep or not key.strip():
            raise UsageError(f"--where takes KEY=VALUE or KEY!=VALUE. Received: {text!r}")
        return cls(key.strip(), value.strip(), negate)

    def matches(self, fields: dict[str, Any]) -> bool:
        found = self.key in fields and value_matches(fields[self.key], self.value)
        return found != self.negate


def value_matches(actual: Any, wanted: str) -> bool:
    """Whether a recipe value equals what the user typed (`200` matches 200, `[64,32]` a list)."""
    if "*" in wanted or "?" in wanted:
        return fnmatch.fnmatchcase(format_value(actual), wanted)
    try:
        parsed = yaml.load(wanted, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        parsed = wanted
    if isinstance(parsed, bool) or isinstance(actual, bool):  # keep true apart from 1
        return parsed is actual
    return parsed == actual or format_value(actual) == wanted


def format_value(value: Any) -> str:
    """A recipe value as one short string: `null`, `true`, `[64, 32]`, `adam`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def filter_runs(runs: list[Run], wheres: Iterable[str]) -> list[Run]:
    """Keeps the runs matching every `--where`; an unknown key is a usage error."""
    filters = [Where.parse(w) for w in wheres]
    if not filters:
        return list(runs)
    all_fields = [run.fields() for run in runs]
    known = set().union(*all_fields) if all_fields else set()
    for where in filters:
        if all_fields and where.key not in known:
            raise UsageError(f"--where: no run has the key {where.key!r}."
                             f"{did_you_mean(where.key, sorted(known))}")
    return [run for run, fields in zip(runs, all_fields)
            if all(where.matches(fields) for where in filters)]
