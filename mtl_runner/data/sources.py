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
    path = resolve(data.path)
    if data.source == "image_dir":
        if not path.is_dir():
            raise SourceError(f"image folder not found: {path}",
                              hint="Paths are relative to the recipe's folder.")
        frame = image_dir_table(path, data.image.column if data.image else "image")
        if frame.empty:
            raise SourceError(f"{path}: no images found in class subfolders "
                              f"(expected {path}/<class>/<image file>)",
                              hint="Put each class's images in a subfolder named after the class.")
        return frame
    if not path.is_file():
        raise SourceError(f"data file not found: {path}",
                          hint="Paths are relative to the recipe's folder.")
    try:
        if data.source == "csv":
            frame = pd.read_csv(path)
        elif data.source == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = read_npz(path, (data.image.column,) if data.image else ())
    except SourceError:
        raise
    except pd.errors.EmptyDataError:
        raise SourceError(f"{path}: the file is empty",
                          hint="A table needs a header row and at least one data row.") from None
    except pd.errors.ParserError as error:
        raise SourceError(_parser_message(path, data.source, error),
                          hint="Fix that row; a value holding a comma needs quotes.") from None
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: the file is not UTF-8 text (byte {error.start})",
                          hint="Save the table as UTF-8.") from None
    except (OSError, ValueError) as error:
        hint = ("Arrays of Python objects are refused (they would be unpickled); save numbers "
                "or strings." if "allow_pickle" in str(error) else
                f"Check that the file is a valid {data.source} file.")
        raise SourceError(f"{path}: cannot read as {data.source}: {str(error).splitlines()[0]}",
                          hint=hint) from None
    if frame.empty:
        raise SourceError(f"{path}: no rows (only a header?)",
                          hint="A table needs at least one data row.")
    if data.image is not None and data.image.column in frame.columns and data.source != "npz":
        # image paths in a table are relative to the table's folder
        frame[data.image.column] = [str(path.parent / p) if isinstance(p, str) else p
                                    for p in frame[data.image.column]]
    return frame
