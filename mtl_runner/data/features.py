"""Feature columns: which they are, what kind, and the statistics fitted on the train split.

The statistics become Keras preprocessing layers inside the model (see
`mtl_runner.models.inputs`), so a saved model takes raw rows.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd


@dataclasses.dataclass
class FeatureSpec:
    """The feature columns and their train-split statistics.

    Attributes:
        numeric: numeric columns, in input order.
        categorical: categorical columns, in input order.
        fill: per numeric column, the train mean that replaces a missing value.
        mean, variance: per numeric column, for normalization (after imputation).
        indicate: numeric columns that have missing values and get a 0/1 indicator.
        vocabulary: per categorical column, the train split's categories.
    """

    numeric: list[str]
    categorical: list[str]
    fill: list[float]
    mean: list[float]
    variance: list[float]
    indicate: list[str]
    vocabulary: dict[str, list[str]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def input_name(column: str) -> str:
    """A Keras-safe input name for a column ("bill length (mm)" → "bill_length_mm_")."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", column)
    return name if re.match(r"^[A-Za-z]", name) else f"f_{name}"


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def select_features(frame: pd.DataFrame, data, label_columns: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns, as the recipe's `data` block asks.

    Features are `data.features` if given, else every column that is neither a label nor in
    `data.exclude`. Categorical are `data.categorical` if given, else the non-numeric ones.
    """
    from mtl_runner.data.kinds import derived_columns

    if data.features is not None:  # a date column chosen as datetime_parts becomes its parts
        chosen = getattr(data, "columns", None) or {}
        columns = [name for c in data.features for name in derived_columns(c, chosen.get(c))]
    else:
        blocked = set(label_columns) | set(data.exclude)
        columns = [c for c in frame.columns if c not in blocked]
    if data.categorical is not None:
        categorical = [c for c in columns if c in set(data.categorical)]
    else:
        categorical = [c for c in columns if c in frame.columns and not is_numeric(frame[c])]
    numeric = [c for c in columns if c not in set(categorical)]
    return numeric, categorical


def categories(series: pd.Series) -> np.ndarray:
    """A categorical column as strings; missing values become "" (the out-of-vocabulary slot)."""
    values = series.astype(object).where(series.notna(), "")
    return np.array([category_name(v) for v in values], dtype=object)


def category_name(value: Any) -> str:
    """A cell as a category: 2 and 2.0 are both "2" (a column with a gap is read as floats)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def fit_features(train: pd.DataFrame, full: pd.DataFrame, numeric: list[str],
                 categorical: list[str]) -> FeatureSpec:
    """Fits imputation, normalization and vocabularies on the train split only."""
    values = train[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64") \
        if numeric else np.zeros((len(train), 0))
    with np.errstate(all="ignore"):
        fill = np.nan_to_num(np.nanmean(values, axis=0)) if numeric else np.zeros(0)
        filled = np.where(np.isnan(values), fill, values)
        mean = filled.mean(axis=0) if len(filled) else fill
        variance = filled.var(axis=0) if len(filled) else np.ones(len(numeric))
    variance = np.where(variance > 0, variance, 1.0)
    indicate = [c for c in numeric if full[c].isna().any()]
    vocabulary = {c: sorted(set(categories(train[c])) - {""}) for c in categorical}
    return FeatureSpec(numeric, categorical, fill.tolist(), mean.tolist(), variance.tolist(),
                       indicate, vocabulary)


def feature_arrays(frame: pd.DataFrame, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Model inputs for the rows of `frame`: one (n, 1) array per column, keyed by input name.

    Numeric columns are float32 with NaN where missing; categorical columns are strings.
    """
    arrays: dict[str, np.ndarray] = {}
    for column in spec.numeric:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if numbers.isna().sum() > frame[column].isna().sum():
            from mtl_runner.data.kinds import blank, shown
            from mtl_runner.errors import RunError

            lost = numbers.isna().to_numpy() & ~blank(frame[column])
            if lost.any():  # settle() converts first; never let a word become NaN unseen
                raise RunError(f"feature column '{column}' holds {int(lost.sum())} cells that are "
                               f"not numbers ({shown(frame[column][lost])})")
        numbers = numbers.to_numpy(dtype="float32")
        arrays[input_name(column)] = numbers.reshape(-1, 1)
    for column in spec.categorical:
        arrays[input_name(column)] = categories(frame[column]).astype(str).reshape(-1, 1)
    return arrays
