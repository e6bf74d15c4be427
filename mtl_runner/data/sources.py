"""Reading a data source (csv, parquet, npz, builtin) into a pandas DataFrame."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_runner.data.images import image_dir_table
from mtl_runner.errors import RunError


class SourceError(RunError):
    """A data file that cannot be read as the recipe says; carries the recipe key to blame."""

    exit_code = 2

    def __init__(self, message: str, key: tuple = ("data", "path"), hint: str = ""):
        self.key = key
        self.hint = hint  # what to do about it, shown after the message
        super().__init__(message)


def _parser_message(path: Path, source: str, error: Exception) -> str:
    """pandas' "Expected 7 fields in line 3, saw 10" as a sentence about the file."""
    text = str(error).strip()
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        expected, line, saw = found.groups()
        return (f"{path}: cannot parse as {source}: line {line} has {saw} fields, "
                f"but the header has {expected}")
    first = text.splitlines()[0] if text else type(error).__name__
    return f"{path}: cannot parse as {source}: {first}"


def csv_header(path: Path, csv) -> list[str]:
    """The header cells as written (pandas renames a repeated name `x.1`, an empty one
    `Unnamed: 3`)."""
    try:
        first = pd.read_csv(path, sep=csv.sep, encoding=csv.encoding, header=None, nrows=1,
                            dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return []  # reading the whole file reports it
    return [str(c).strip() for c in first.iloc[0].tolist()] if len(first) else []


def refuse_repeated(path: Path, names: list[str]) -> None:
    """A header naming a column twice is refused (pandas would rename one `x.1`)."""
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if twice:
        raise SourceError(f"{path}: the header names a column more than once: "
                          + ", ".join(repr(n) for n in twice[:5]),
                          hint="Give every column its own name; the reader would otherwise "
                               "rename one silently.")


OTHER_SEPARATORS = (",", ";", "\t", "|")


def looks_separated(path: Path, csv, header: list[str]) -> None:
    """Refuses a table whose header and first rows split into more fields on another separator
    (a ';'-separated file read with ',' is one column, and every key would be "not a column")."""
    with open(path, encoding=csv.encoding, errors="replace", newline="") as file:
        lines = [line.rstrip("\r\n") for _, line in zip(range(6), file)]
    lines = [line for line in lines if line.strip()]
    for sep in OTHER_SEPARATORS:
        if sep == csv.sep or not lines:
            continue
        fields = lines[0].count(sep) + 1
        if fields > max(len(header), 1) and all(line.count(sep) + 1 == fields for line in lines):
            shown = "\\t" if sep == "\t" else sep
            raise SourceError(f"{path}: the header has {len(header)} column(s) when split on "
                              f"{csv.sep!r}, but {fields} when split on {sep!r}",
                              key=("data", "csv", "sep"),
                              hint=f"Set data.csv.sep: \"{shown}\" in the recipe.")


def read_npz(path: Path, keep_whole: tuple[str, ...] = ()) -> pd.DataFrame:
    """An .npz file as a table: each 1-D array is a column, each N-D array is flattened into
    columns `name_0`, `name_1`, ... (or, if named in `keep_whole`, kept as one column of
    per-row arrays, e.g. images). All arrays must have the same first dimension."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    lengths = {name: len(a) for name, a in arrays.items() if a.ndim > 0}
    if not lengths:
        raise SourceError(f"{path}: the .npz file holds no arrays")
    if len(set(lengths.values())) > 1:
        raise SourceError(f"{path}: arrays have different lengths: "
                          + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    columns: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if array.ndim == 1:
            columns[name] = array
        elif name in keep_whole:
            columns[name] = list(array)
        elif array.ndim > 1:
            flat = array.reshape(len(array), -1)
            for j in range(flat.shape[1]):
                if f"{name}_{j}" in arrays or f"{name}_{j}" in columns:
                    raise SourceError(f"{path}: array '{name}' flattens into a column "
                                      f"'{name}_{j}', but the file has an array of that name too",
                                      hint="Rename one of the arrays.")
                columns[f"{name}_{j}"] = flat[:, j]
    return pd.DataFrame(columns)


def read_source(data, resolve=lambda p: Path(p)) -> pd.DataFrame:
    """Reads the recipe's `data` block into a DataFrame.

    Args:
        data: the recipe's `DataConfig`.
        resolve: turns `data.path` into a file path (relative to the recipe).

    Raises:
        SourceError: the file is missing, unreadable, empty or malformed.
    """
    if data.source == "builtin":
        return read_builtin(data)
    path = resolve(data.path)
    if data.source == "image_dir":
        return read_image_dir(path, data.image.column if data.image else "image")
    _check_data_file(path)
    from mtl_runner.recipe.schema import CsvConfig

    csv = getattr(data, "csv", None) or CsvConfig()
    frame, header = _read_table(path, data, csv)
    if frame.empty:
        raise SourceError(f"{path}: no rows (only a header?)",
                          hint="A table needs at least one data row.")
    refuse_repeated(path, header)
    if data.image is not None and data.image.column in frame.columns and data.source != "npz":
        # image paths in a table are relative to the table's folder
        frame[data.image.column] = [str(path.parent / p) if isinstance(p, str) else p
                                    for p in frame[data.image.column]]
    return frame


def read_builtin(data) -> pd.DataFrame:
    """A builtin dataset, its `data.options` checked against its loader's signature."""
    from mtl_runner.data.builtin import DATASETS

    if data.name not in DATASETS:
        raise SourceError(DATASETS.unknown_message(data.name), ("data", "name"))
    loader = DATASETS.get(data.name)
    try:
        inspect.signature(loader).bind(**data.options)
    except TypeError as error:
        raise SourceError(f"options of builtin dataset '{data.name}': {error}",
                          ("data", "options")) from None
    return loader(**data.options)


def read_image_dir(path: Path, column: str) -> pd.DataFrame:
    """A folder of class subfolders as a table of image paths and class names."""
    if not path.is_dir():
        raise SourceError(f"image folder not found: {path}",
                          hint="Paths are relative to the recipe's folder.")
    frame = image_dir_table(path, column)
    if frame.empty:
        raise SourceError(f"{path}: no images found in class subfolders "
                          f"(expected {path}/<class>/<image file>)",
                          hint="Put each class's images in a subfolder named after the class.")
    return frame


def _check_data_file(path: Path) -> None:
    """Before any read: a FIFO, a device or an endless file is refused, not read."""
    from mtl_runner.reading import FileRefused, check_regular_file, data_file_limit

    try:
        check_regular_file(path, data_file_limit(), "data file")
    except FileRefused as error:
        if error.missing:
            raise SourceError(f"data file not found: {path}",
                              hint="Paths are relative to the recipe's folder.") from None
        raise SourceError(str(error), hint=error.hint) from None


def _read_table(path: Path, data, csv) -> tuple[pd.DataFrame, list[str]]:
    """A csv, parquet or npz file as (table, its column names as written).

    Raises:
        SourceError: the file is empty, malformed, or not the format `data.source` says.
    """
    try:
        if data.source == "csv":
            header = csv_header(path, csv)
            looks_separated(path, csv, header)
            frame = pd.read_csv(path, sep=csv.sep, decimal=csv.decimal, encoding=csv.encoding)
            return frame, header
        if data.source == "parquet":
            import pyarrow.parquet

            refuse_repeated(path, [str(n) for n in pyarrow.parquet.read_schema(path).names])
            frame = pd.read_parquet(path)
        else:
            frame = read_npz(path, (data.image.column,) if data.image else ())
    except SourceError:
        raise
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError,
            ValueError) as error:
        raise _unreadable(path, data.source, csv, error) from None
    return frame, [str(c) for c in frame.columns]


def _unreadable(path: Path, source: str, csv, error: Exception) -> SourceError:
    """What reading the file raised, as a SourceError that says what to do."""
    if isinstance(error, pd.errors.EmptyDataError):
        return SourceError(f"{path}: the file is empty",
                           hint="A table needs a header row and at least one data row.")
    if isinstance(error, pd.errors.ParserError):
        return SourceError(_parser_message(path, source, error),
                           hint="Fix that row; a value holding a comma needs quotes.")
    if isinstance(error, UnicodeDecodeError):
        return SourceError(f"{path}: the file is not {csv.encoding} text (byte {error.start})",
                           hint="Save the table as UTF-8, or name its encoding with "
                                "data.csv.encoding (e.g. latin-1).")
    hint = ("Arrays of Python objects are refused (they would be unpickled); save numbers "
            "or strings." if "allow_pickle" in str(error) else
            f"Check that the file is a valid {source} file.")
    return SourceError(f"{path}: cannot read as {source}: {str(error).splitlines()[0]}",
                       hint=hint)
