"""The kind of each feature column — numeric, categorical, date or list — decided once, by rule.

A column never changes kind without a word: `settle` reads a table's feature columns by the
rules below and returns the problems it found (each naming the column, how many cells and the
first of them) instead of guessing. `settle_like` holds new data (predict, evaluate) to the
kinds a run was trained with.

The rules (README, "How a column's kind is decided"):

- numbers (and a text column whose every non-empty cell is a number) are numeric;
- a column with ≥ 90 % numbers among its non-empty cells is *mostly numeric*: the other cells
  are an error, or missing values with `data.bad_cells: missing`;
- dates (a date/time column, or ≥ 90 % of cells written like 2024-01-31 [10:00]) and lists
  (parquet list columns) need a choice in `data.columns`;
- other text is categorical; one with more distinct values than max(20, half its non-empty
  cells) must be listed in `data.categorical` (an identifier or a number read as text?).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
from typing import Any

import numpy as np
import pandas as pd

from mtl_runner.errors import did_you_mean

MOSTLY = 0.9                 # share of non-empty cells that makes a column mostly numeric / dates
PARTLY_DISTINCT = 10         # a text column with more distinct numbers than this holds numbers
DATE_PARTS = ("year", "month", "day", "weekday", "hour")
DATE_CHOICES = ("datetime_parts", "datetime_ordinal")
LIST_CHOICES = ("list_join", "list_length")
SETTLED = "mtl_settled"      # frame.attrs flag: settling twice is a no-op
AS_TRAINED = ("Fix those cells (a run reads them as missing only when trained with "
              "data.bad_cells: missing).")

_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
                       r"\s*(Z|UTC|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)
_SLASH_YMD = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_DAY_MONTH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_NAMED = re.compile(rf"^(\d{{1,2}}[ -]({_MONTHS})[a-z]*\.?[ -,]+\d{{4}}|({_MONTHS})[a-z]*\.? "
                    rf"\d{{1,2}},? \d{{4}})([ T]\d{{1,2}}:\d{{2}}(:\d{{2}})?)?$", re.IGNORECASE)
_COMMA_NUMBER = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_SCALARS = (str, int, float, bool, decimal.Decimal, np.generic)


@dataclasses.dataclass
class KindProblem:
    """A column whose kind is wrong or undecided; `key` is relative to its data block."""

    column: str
    key: tuple
    message: str
    received: str | None = None
    hint: str = ""


@dataclasses.dataclass
class Settled:
    """A table whose feature columns have their final kinds.

    Attributes:
        frame: the table; numeric features hold floats, date and list columns are replaced by
            what `data.columns` chose.
        problems: what stops the table from being used.
        notes: counted warnings (cells read as missing, categories never seen in training).
        kinds: "numeric" or "categorical" per feature column, after settling.
    """

    frame: pd.DataFrame
    problems: list[KindProblem] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)


def numbers_written_as_text(column: pd.Series) -> str | None:
    """A few cells, quoted, when most cells start like a number (`0.12cm`, `2024-01-05`): they
    show the user what to fix. None otherwise: identifiers and keys are never quoted."""
    texts = column.dropna().astype(str).str.strip()
    numeric_start = texts[texts.str.match(r"^[-+]?\.?\d")]
    if len(texts) == 0 or len(numeric_start) < len(texts) / 2:
        return None
    return shown(numeric_start)


def shown(values, limit: int = 3) -> str:
    """Up to `limit` distinct values, each as a short repr (≤ 20 characters)."""
    out: list[str] = []
    for value in values:
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, (pd.Timestamp, dt.datetime)):
            value = str(value.date()) if value == value.normalize() else str(value)
        text = repr(str(value) if isinstance(value, dt.date) else value)
        text = text if len(text) <= 20 else text[:17] + "..."
        if text not in out:
            out.append(text)
        if len(out) == limit:
            break
    return ", ".join(out)


def blank(series: pd.Series) -> np.ndarray:
    """True where a cell is empty: NaN, None, NaT or a blank string."""
    values = series.to_numpy(dtype=object)
    absent = np.array([v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT
                       or v is pd.NA or (isinstance(v, str) and not v.strip()) for v in values],
                      dtype=bool)
    return absent


def derived_columns(column: str, choice: str | None) -> list[str]:
    """The feature columns a raw column becomes under its `data.columns` choice."""
    if choice == "datetime_parts":
        return [f"{column}_{part}" for part in DATE_PARTS]
    return [column]


def feature_candidates(columns, data, labels) -> list[str]:
    """The raw columns a data block uses as features (before date parts are derived)."""
    if data.features is not None:
        return [c for c in data.features if c in set(columns)]
    blocked = set(labels) | set(data.exclude)
    return [c for c in columns if c not in blocked]


# -- reading a column's kind ---------------------------------------------------------------------
@dataclasses.dataclass
class Reading:
    """What a column holds: its kind, its numbers where it has them, and the odd cells."""

    kind: str                        # numeric | mostly_numeric | decimal_comma | datetime | list |
    numbers: pd.Series | None = None  # objects | durations | categorical | empty
    odd: pd.Series | None = None     # the non-empty cells that do not fit the kind
    filled: int = 0                  # non-empty cells


def read_kind(series: pd.Series) -> Reading:
    """Reads the kind of one column by the rules in the module docstring."""
    declared = _declared_kind(series)
    if declared is not None:
        return declared
    empty = blank(series)
    cells = series[~empty].astype(object)
    if not len(cells):
        return Reading("empty")
    return _cells_kind(cells) or _text_kind(series, cells, empty)


def _declared_kind(series: pd.Series) -> Reading | None:
    """The kind a column's dtype declares (bool, category, numbers, dates, durations), or None
    for a column of Python objects."""
    filled = int(series.notna().sum())
    if pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return Reading("categorical", filled=filled)  # as the file declares
    if pd.api.types.is_numeric_dtype(series):
        return Reading("numeric", series.astype("float64"), filled=filled)
    if pd.api.types.is_datetime64_any_dtype(series):
        return Reading("datetime", filled=filled)
    if pd.api.types.is_timedelta64_dtype(series):
        return Reading("durations", filled=filled)
    return None


def _cells_kind(cells: pd.Series) -> Reading | None:
    """The kind of non-empty object cells that are not all text or numbers (lists, other
    objects, booleans), or None."""
    listy = cells.map(lambda v: isinstance(v, (list, tuple, np.ndarray)))
    if listy.all():
        return Reading("list", filled=len(cells))
    scalar = cells.map(lambda v: isinstance(v, _SCALARS))
    if listy.any() or not scalar.all():
        return Reading("objects", odd=cells[~scalar], filled=len(cells))
    if cells.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return Reading("categorical", filled=len(cells))  # true/false, as a bool column is
    return None


def _text_kind(series: pd.Series, cells: pd.Series, empty: np.ndarray) -> Reading:
    """The kind of a column of text and numbers: numbers, numbers with a decimal comma, mostly
    numbers, dates, or categories."""
    filled = len(cells)
    text = cells.map(lambda v: v.strip() if isinstance(v, str) else v)
    numbers = numbers_of(series)
    is_number = pd.Series(numbers.to_numpy()[~empty], index=cells.index).notna()
    odd = cells[~is_number]
    if is_number.all():
        return Reading("numeric", numbers, filled=filled)
    commas = text.map(lambda v: isinstance(v, str) and bool(_COMMA_NUMBER.match(v)))
    if commas.any() and (is_number | commas).mean() >= MOSTLY:
        return Reading("decimal_comma", numbers, cells[commas], filled)
    if is_number.mean() >= MOSTLY:
        return Reading("mostly_numeric", numbers, odd, filled)
    dates = text.map(lambda v: isinstance(v, str) and looks_like_date(v))
    if dates.mean() >= MOSTLY:
        return Reading("datetime", odd=cells[~dates], filled=filled)
    if numbers.nunique() > PARTLY_DISTINCT:  # a numeric column damaged, not codes like 1, 2, XL
        return Reading("partly_numeric", numbers, odd, filled)
    return Reading("categorical", filled=filled)


def numbers_of(series: pd.Series) -> pd.Series:
    """The column as float64: NaN where a cell is empty or not a number."""
    def one(value: Any):
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, _SCALARS):
            return None
        return value

    values = series.astype(object).map(one)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def looks_like_date(text: str) -> bool:
    return bool(_ISO_DATE.match(text) or _SLASH_YMD.match(text) or _DAY_MONTH.match(text)
                or _NAMED.match(text))


def holds_dates(series: pd.Series, reading: Reading) -> bool:
    """Whether a column chosen to be dates has any (its other cells then follow bad_cells)."""
    if reading.kind == "datetime":
        return True
    return reading.kind in ("categorical", "partly_numeric") and any(
        isinstance(v, str) and looks_like_date(v.strip()) for v in series.to_numpy(dtype=object))


def parse_dates(series: pd.Series) -> tuple[pd.Series, str | None]:
    """Dates of a column as UTC timestamps (NaT where a cell does not parse).

    Returns:
        (timestamps, problem): `problem` says why the column cannot be read at all (dates
        written day/month/year or month/day/year that could be either).
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = series if series.dt.tz is not None else series.dt.tz_localize("UTC")
        return stamps.dt.tz_convert("UTC"), None
    text = series.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
    numeric_order = [m.groups()[:2] for v in text if isinstance(v, str)
                     for m in [_DAY_MONTH.match(v)] if m]
    dayfirst = False
    if numeric_order:
        firsts = {int(a) for a, _ in numeric_order}
        seconds = {int(b) for _, b in numeric_order}
        if max(firsts) > 12 and max(seconds) > 12:
            return pd.Series(pd.NaT, index=series.index), ("dates mix day/month/year and "
                                                           "month/day/year")
        if max(firsts) <= 12 and max(seconds) <= 12:
            return pd.Series(pd.NaT, index=series.index), ("dates written like "
                                                           f"{numeric_order[0][0]}/"
                                                           f"{numeric_order[0][1]}/... could be "
                                                           "day/month or month/day")
        dayfirst = max(firsts) > 12

    def one(value: Any):
        if not isinstance(value, str) or not looks_like_date(value):
            return pd.NaT
        try:
            return pd.to_datetime(value, utc=True, dayfirst=dayfirst)
        except (ValueError, OverflowError):
            return pd.NaT

    return pd.to_datetime(text.map(one), utc=True), None


def _convert_dates(frame: pd.DataFrame, column: str, choice: str,
                   stamps: pd.Series) -> pd.DataFrame:
    position = list(frame.columns).index(column)
    if choice == "datetime_ordinal":
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        values = {column: ((stamps - epoch) / pd.Timedelta(days=1)).astype("float64")}
    else:
        parts = {"year": stamps.dt.year, "month": stamps.dt.month, "day": stamps.dt.day,
                 "weekday": stamps.dt.day_of_week, "hour": stamps.dt.hour}
        values = {f"{column}_{p}": parts[p].astype("float64") for p in DATE_PARTS}
    frame = frame.drop(columns=[column])
    for offset, (name, series) in enumerate(values.items()):
        frame.insert(position + offset, name, series.to_numpy())
    return frame


def _convert_list(series: pd.Series, choice: str) -> pd.Series:
    def one(value: Any):
        if not isinstance(value, (list, tuple, np.ndarray)):
            return np.nan if choice == "list_length" else None
        if choice == "list_length":
            return float(len(value))
        return "|".join(str(v.item() if isinstance(v, np.generic) else v) for v in value)

    return series.astype(object).map(one)


# -- settling a table ----------------------------------------------------------------------------
def _where(data, column: str) -> tuple:
    """The recipe key to blame for a column: its entry in features or columns, else the block."""
    if data.features is not None and column in data.features:
        return ("features", list(data.features).index(column))
    if column in (data.columns or {}):
        return ("columns", column)
    return ()


def _choices_hint(column: str, choices: tuple[str, ...]) -> str:
    return (f"Choose how to use it: data.columns: {{{column}: {' | '.join(choices)}}}, "
            f"or leave it out with data.exclude.")


def settle(frame: pd.DataFrame, data, labels: list[str]) -> Settled:
    """Reads the kind of every feature column of `frame` (a table read for `data`).

    Args:
        frame: the table as read.
        data: its recipe `DataConfig` (features, exclude, categorical, columns, bad_cells).
        labels: the label columns of the tasks the table serves (never touched).

    Returns:
        The settled table, with the problems that stop it from being used and counted notes.
    """
    if frame.attrs.get(SETTLED) or data.image is not None:
        return Settled(frame)
    frame = frame.copy()
    out = Settled(frame)
    chosen = dict(data.columns or {})
    declared = set(data.categorical or [])
    features = feature_candidates(list(frame.columns), data, labels)
    _check_choices(out, frame, chosen, features, labels)
    for column in features:
        choice = chosen.get(column)
        if re.fullmatch(r"Unnamed: \d+", str(column)) and choice is None:
            out.problems.append(KindProblem(column, _where(data, column), f"column {column!r} has "
                                            "no name in the header", hint=f"Name it, or leave it "
                                            f"out with data.exclude: [{column!r}] (a saved row "
                                            "index?)."))
        elif choice is not None:
            frame = _settle_chosen(out, frame, data, column, choice)
        else:
            frame = _settle_plain(out, frame, data, column, column in declared)
    frame.attrs[SETTLED] = True
    out.frame = frame
    return out


def _check_choices(out: Settled, frame: pd.DataFrame, chosen: dict[str, str],
                   features: list[str], labels: list[str]) -> None:
    """Reports `data.columns` entries that name no feature column, or whose date parts would
    overwrite a column; such a column leaves `features`."""
    for column in chosen:
        if column not in frame.columns:
            out.problems.append(KindProblem(column, ("columns", column), f"'{column}' is not a "
                                            "column of the data", hint=did_you_mean(
                                                column, map(str, frame.columns))))
        elif column in labels:
            out.problems.append(KindProblem(column, ("columns", column), f"'{column}' is a label; "
                                            "data.columns sets how feature columns are read"))
        elif column not in features:
            out.problems.append(KindProblem(column, ("columns", column), f"'{column}' is not a "
                                            "feature column (excluded, or not in data.features)"))
    for column, choice in chosen.items():
        for name in derived_columns(column, choice):
            if name != column and name in frame.columns and column in features:
                out.problems.append(KindProblem(column, ("columns", column), f"datetime_parts "
                                                f"would add a column '{name}', but the data has "
                                                "one already", hint="Rename that column, or use "
                                                "datetime_ordinal."))
                features.remove(column)
                break


def _settle_chosen(out: Settled, frame: pd.DataFrame, data, column: str,
                   choice: str) -> pd.DataFrame:
    """A date or list column read as `data.columns` chose."""
    reading = read_kind(frame[column])
    if choice in DATE_CHOICES:
        if not holds_dates(frame[column], reading):
            out.problems.append(KindProblem(column, ("columns", column), f"{choice} needs a "
                                            f"column of dates; '{column}' holds "
                                            f"{reading.kind.replace('_', ' ')} values",
                                            shown(frame[column].dropna())))
            return frame
        stamps, trouble = parse_dates(frame[column])
        if trouble:
            out.problems.append(KindProblem(column, ("columns", column), f"column '{column}': "
                                            f"{trouble}", shown(frame[column].dropna()),
                                            "Write the dates as YYYY-MM-DD."))
            return frame
        if not _bad_cells(out, data, column, ~blank(frame[column]) & stamps.isna().to_numpy(),
                          frame[column], "not dates", ("columns", column)):
            return frame
        frame = _convert_dates(frame, column, choice, stamps)
        for name in derived_columns(column, choice):
            out.kinds[name] = "numeric"
        return frame
    if choice in LIST_CHOICES:
        if reading.kind != "list":
            out.problems.append(KindProblem(column, ("columns", column), f"{choice} needs a "
                                            f"column of lists; '{column}' holds "
                                            f"{reading.kind.replace('_', ' ')} values",
                                            shown(frame[column].dropna())))
            return frame
        frame[column] = _convert_list(frame[column], choice)
        out.kinds[column] = "numeric" if choice == "list_length" else "categorical"
        return frame
    return frame


def _settle_plain(out: Settled, frame: pd.DataFrame, data, column: str,
                  declared: bool) -> pd.DataFrame:
    """A column without a `data.columns` choice, by the rules of the module docstring."""
    reading = read_kind(frame[column])
    where = _where(data, column)
    if reading.kind == "datetime" and declared:
        out.kinds[column] = "categorical"  # dates one-hot, as the recipe asks
        return frame
    if reading.kind == "list":
        out.problems.append(KindProblem(column, where, f"feature column '{column}' holds "
                                        "lists", hint=_choices_hint(column, LIST_CHOICES)))
    elif reading.kind == "datetime":
        out.problems.append(KindProblem(column, where, f"feature column '{column}' holds "
                                        f"dates ({reading.filled} cells)",
                                        shown(frame[column].dropna()),
                                        _choices_hint(column, DATE_CHOICES)))
    elif reading.kind in ("objects", "durations"):
        what = "durations" if reading.kind == "durations" else \
            f"values that are neither numbers nor text ({type(reading.odd.iloc[0]).__name__})"
        out.problems.append(KindProblem(column, where, f"feature column '{column}' holds "
                                        f"{what}", hint="Convert it to numbers or text in the "
                                        f"file, or leave it out with data.exclude."))
    elif declared:
        out.kinds[column] = "categorical"
    elif reading.kind == "numeric":
        frame[column] = reading.numbers
        out.kinds[column] = "numeric"
    elif reading.kind == "decimal_comma":
        out.problems.append(KindProblem(column, where, f"feature column '{column}' holds "
                                        f"numbers written with a decimal comma ({len(reading.odd)} "
                                        f"of {reading.filled} cells)", shown(reading.odd),
                                        "Set data.csv.decimal: \",\" (and data.csv.sep if the "
                                        "fields are separated by ';'); commas between "
                                        "thousands must go from the file."))
    elif reading.kind in ("mostly_numeric", "partly_numeric"):
        if _bad_cells(out, data, column, reading.numbers.isna().to_numpy()
                      & ~blank(frame[column]), frame[column], "not numbers", where,
                      "or list the column in data.categorical to use it as categories",
                      kind=_numeric_phrase(reading)):
            frame[column] = reading.numbers
            out.kinds[column] = "numeric"
    elif reading.kind == "empty":
        out.kinds[column] = "categorical"
    else:
        distinct = frame[column].dropna().astype(str).str.strip().nunique()
        if distinct > max(20, reading.filled // 2):
            out.problems.append(KindProblem(column, where, f"feature column '{column}' is "
                                            f"text with {distinct} distinct values in "
                                            f"{reading.filled} rows: an identifier, or numbers "
                                            f"or dates not written as such?",
                                            numbers_written_as_text(frame[column]),
                                            "List it in data.categorical to one-hot it "
                                            "anyway, or leave it out with data.exclude."))
        out.kinds[column] = "categorical"
    return frame


def _numeric_phrase(reading: Reading) -> str:
    if reading.kind == "mostly_numeric":
        return "mostly numeric"
    return f"numeric ({reading.numbers.nunique()} distinct numbers)"


def _bad_cells(out: Settled, data, column: str, bad: np.ndarray, series: pd.Series, what: str,
               where: tuple, alternative: str = "", hint: str = "", kind: str = "") -> bool:
    """Applies `data.bad_cells` to a column's odd cells; False when they are an error."""
    count = int(bad.sum())
    if not count:
        return True
    filled = int((~blank(series)).sum())
    if data.bad_cells == "missing":
        out.notes.append(f"column '{column}': {count} of {filled} cells are {what} "
                         f"({shown(series[bad])}); read as missing (data.bad_cells: missing)")
        return True
    kind = kind or ("mostly numeric" if what == "not numbers" else "a column of dates")
    other = f", {alternative}" if alternative else ""
    out.problems.append(KindProblem(column, where, f"feature column '{column}' is {kind}, but "
                                    f"{count} of {filled} non-empty cells are {what}",
                                    shown(series[bad]),
                                    hint or "Fix those cells, or set data.bad_cells: missing to "
                                    f"read them as missing{other}."))
    return False


def settle_like(frame: pd.DataFrame, data, spec) -> Settled:
    """Holds new rows (predict, evaluate) to the kinds of the run's features.

    Args:
        frame: the new table as read.
        data: the run's `DataConfig` (columns and bad_cells apply as in training).
        spec: the run's `FeatureSpec`.
    """
    out = Settled(frame.copy())
    derived: dict[str, str] = {}  # feature column → the raw column it was derived from
    for column, choice in (data.columns or {}).items():
        names = derived_columns(column, choice)
        if not any(n in spec.numeric or n in spec.categorical for n in names):
            continue
        if column not in out.frame.columns:
            continue  # reported with the other absent columns
        _chosen_like(out, data, column, choice)
        derived.update({n: column for n in names})
    for column in spec.numeric:
        if column not in derived and column in out.frame.columns:
            _numeric_like(out, data, column)
    for column in spec.categorical:
        if column not in derived and column in out.frame.columns:
            _categorical_like(out, column, spec.vocabulary.get(column, []))
    out.frame.attrs[SETTLED] = True
    return out


def _chosen_like(out: Settled, data, column: str, choice: str) -> None:
    """A date or list column of new rows, converted as `data.columns` chose in training."""
    frame = out.frame
    reading = read_kind(frame[column])
    if choice in DATE_CHOICES:
        stamps, trouble = (parse_dates(frame[column]) if holds_dates(frame[column], reading)
                           else (None, f"'{column}' holds no dates"))
        if trouble:
            out.problems.append(KindProblem(column, (), f"feature column '{column}': "
                                            f"{trouble}", shown(frame[column].dropna())))
        elif _bad_cells(out, data, column, ~blank(frame[column]) & stamps.isna().to_numpy(),
                        frame[column], "not dates", (), hint=AS_TRAINED):
            out.frame = _convert_dates(frame, column, choice, stamps)
    elif reading.kind != "list":
        out.problems.append(KindProblem(column, (), f"feature column '{column}' was a column "
                                        "of lists in training; here it is not",
                                        shown(frame[column].dropna())))
    else:
        frame[column] = _convert_list(frame[column], choice)


def _numeric_like(out: Settled, data, column: str) -> None:
    """A column of new rows that was numeric in training: its numbers, or a problem."""
    frame = out.frame
    reading = read_kind(frame[column])
    if reading.kind == "numeric":
        frame[column] = reading.numbers
    elif reading.kind == "empty":
        frame[column] = np.nan
    elif reading.kind in ("mostly_numeric", "partly_numeric"):
        if _bad_cells(out, data, column, reading.numbers.isna().to_numpy()
                      & ~blank(frame[column]), frame[column], "not numbers", (),
                      hint=AS_TRAINED, kind=_numeric_phrase(reading)):
            frame[column] = reading.numbers
    else:
        odd = frame[column][numbers_of(frame[column]).isna().to_numpy() & ~blank(frame[column])]
        hint = ("Write the numbers with a '.' decimal mark, as in training."
                if reading.kind == "decimal_comma" else "Give this column numbers, as in "
                "training.")
        out.problems.append(KindProblem(column, (), f"feature column '{column}' was numeric in "
                                        f"training, but {len(odd)} of {reading.filled} "
                                        "non-empty cells here are not numbers",
                                        shown(odd), hint))


def _categorical_like(out: Settled, column: str, vocabulary: list) -> None:
    """A column of new rows that was categorical in training: a problem when it holds no
    categories, a note counting the categories training never saw."""
    from mtl_runner.data.features import categories

    reading = read_kind(out.frame[column])
    if reading.kind in ("list", "objects", "durations"):
        what = "lists" if reading.kind == "list" else reading.kind
        out.problems.append(KindProblem(column, (), f"feature column '{column}' holds {what}, "
                                        "not categories as in training"))
        return
    names = categories(out.frame[column])
    unseen = (names != "") & ~np.isin(names, vocabulary)
    if unseen.any():
        out.notes.append(f"column '{column}': {int(unseen.sum())} of {len(names)} rows hold "
                         f"categories not seen in training ({shown(names[unseen])}); they are "
                         "encoded as unknown")


def settle_groups(loaded, groups_with_frames, label_columns) -> list:
    """Settles every data source of a loaded recipe in place (`loaded.frames`); returns the
    recipe problems, each at its data block's key. Notes are printed as warnings."""
    import click

    problems = []
    seen: dict[str, tuple[str, tuple]] = {}  # feature column -> (kind, key) in the first source
    from mtl_runner.errors import names_can_be_shown

    for block, tasks, frame, key in list(groups_with_frames(loaded)):
        if not names_can_be_shown(frame.columns, len(frame)):
            # not a table (a key file, /etc/passwd): no column, and no cell, is named
            problems.append(loaded.problem(key + ("path",), "the file did not read as a table "
                                           "with named columns (two or more, a data row, "
                                           "printable names)", hint="Check data.path, and "
                                           "data.csv.sep for a table separated otherwise."))
            continue
        index = next(i for i, f in enumerate(loaded.frames) if f is frame)
        settled = settle(frame, block, label_columns(loaded.recipe, tasks))
        loaded.frames[index] = settled.frame
        if index == 0:
            loaded.frame = settled.frame
        for note in settled.notes:
            warning = f"{loaded.path}: {'.'.join(map(str, key))}: {note}"
            loaded.warnings.append(warning)
            click.echo(f"Warning: {warning}", err=True)
        for problem in settled.problems:
            problems.append(loaded.problem(key + problem.key, problem.message, problem.received,
                                           problem.hint))
        for column, kind in settled.kinds.items():
            first = seen.setdefault(column, (kind, key))
            if first[0] != kind:
                problems.append(loaded.problem(key, f"feature column '{column}' is {kind} here but "
                                               f"{first[0]} in {'.'.join(map(str, first[1]))}",
                                               hint="Every source must give a feature the same "
                                               "kind; fix the data, or list the column in "
                                               "data.categorical in both."))
    return problems


def settled_frames(frames: list[pd.DataFrame], recipe) -> list[pd.DataFrame]:
    """The tables of `recipe.data_groups()` settled for training (a no-op for tables the recipe
    checks settled already).

    Raises:
        RunError: a column's kind is wrong or undecided (when the data checks did not run).
    """
    from mtl_runner.errors import RunError

    out, problems = [], []
    for (block, tasks), frame in zip(recipe.data_groups(), frames):
        labels = [c for t in tasks for c in ([recipe.tasks[t].label] if isinstance(
            recipe.tasks[t].label, str) else recipe.tasks[t].label)]
        settled = settle(frame, block, labels)
        out.append(settled.frame)
        problems += [f"{p.message}" + (f". Received: {p.received}" if p.received else "")
                     + (f". {p.hint}" if p.hint else "") for p in settled.problems]
    if problems:
        raise RunError("\n".join(problems))
    return out
