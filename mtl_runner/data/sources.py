"""Reading a data source (csv, parquet, npz, builtin) into a pandas DataFrame."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd

from mtl_runner.data.images import image_dir_table
from mtl_runner.errors import RunError


class SourceError(RunError):
    """A data file that cannot be read as the recipe says; carries the recipe key to blame."""

    exit_code = 2

    def __init__(self, message: str, key: tuple = ("data", "path")):
        self.key = key
        super().__init__(message)


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
            raise SourceError(f"image folder not found: {path}")
        frame = image_dir_table(path, data.image.column if data.image else "image")
        if frame.empty:
            raise SourceError(f"{path}: no images found in class subfolders "
                              f"(expected {path}/<class>/<image file>)")
        return frame
    if not path.is_file():
        raise SourceError(f"data file not found: {path}")
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
        raise SourceError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as error:
        raise SourceError(f"{path}: cannot parse as {data.source}: {str(error).strip()}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path}: the file is not UTF-8 text") from None
    except (OSError, ValueError) as error:
        raise SourceError(f"{path}: cannot read as {data.source}: {error}") from None
    if frame.empty:
        raise SourceError(f"{path}: no rows (only a header?)")
    if data.image is not None and data.image.column in frame.columns and data.source != "npz":
        # image paths in a table are relative to the table's folder
        frame[data.image.column] = [str(path.parent / p) if isinstance(p, str) else p
                                    for p in frame[data.image.column]]
    return frame
