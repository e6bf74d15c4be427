import decimal

import numpy as np
import pandas as pd
import pytest

from mtl_runner.data.kinds import parse_dates, read_kind, settle, settle_like
from mtl_runner.data.features import fit_features
from mtl_runner.recipe.schema import DataConfig


def data(**options) -> DataConfig:
    return DataConfig(source="csv", path="t.csv", **options)


@pytest.mark.parametrize("values, kind", [
    ([1.5, 2.0, np.nan], "numeric"),
    (["1.5", " 2 ", None, ""], "numeric"),                       # a parquet string column
    ([decimal.Decimal("1.5"), decimal.Decimal("2")], "numeric"),
    ([True, False, None], "categorical"),
    (["1", "2", "XL"], "categorical"),                           # codes, not damaged numbers
    (["March", "April", "May"], "categorical"),                  # month names are categories
    (["2024-01-31", "2024-02-01 10:00", "2024-03-01T10:00:00Z"], "datetime"),
    ([[1, 2], [3], None], "list"),
    ([{"a": 1}, {"b": 2}], "objects"),
    (["1,5", "2,25", "3"], "decimal_comma"),
    ([str(i) for i in range(19)] + ["?"], "mostly_numeric"),
    ([str(i) for i in range(12)] + ["?"] * 12, "partly_numeric"),
])
def test_the_kind_of_a_column_follows_the_rules(values, kind):
    assert read_kind(pd.Series(values, dtype=object)).kind == kind


def test_a_declared_categorical_dtype_stays_categorical():
    assert read_kind(pd.Series([1, 2, 1], dtype="category")).kind == "categorical"


def test_day_first_dates_are_read_day_first_and_ambiguous_ones_refused():
    stamps, trouble = parse_dates(pd.Series(["31/01/2024", "01/02/2024"]))
    assert trouble is None and stamps.dt.month.tolist() == [1, 2]
    assert "could be day/month or month/day" in parse_dates(pd.Series(["01/02/2024"]))[1]


def test_settle_converts_what_the_recipe_chose_and_is_idempotent():
    frame = pd.DataFrame({"when": ["2024-01-31 10:00", "2024-02-29 23:00"],
                          "items": [["a", "b"], ["c"]], "n": ["1", "2"], "y": [0, 1]})
    block = data(columns={"when": "datetime_ordinal", "items": "list_join"})
    settled = settle(frame, block, ["y"])
    assert not settled.problems
    assert settled.frame["when"].tolist() == pytest.approx([19753 + 10 / 24, 19782 + 23 / 24])
    assert settled.frame["items"].tolist() == ["a|b", "c"]
    assert settled.frame["n"].dtype == "float64"
    assert settled.kinds == {"when": "numeric", "items": "categorical", "n": "numeric"}
    assert settle(settled.frame, block, ["y"]).frame is settled.frame
    lengths = settle(frame, data(columns={"when": "datetime_parts", "items": "list_length"}), ["y"])
    assert lengths.frame["items"].tolist() == [2.0, 1.0]
    assert lengths.frame["when_weekday"].tolist() == [2.0, 3.0]      # Wednesday, Thursday


def test_labels_are_never_touched_and_declared_categories_are_kept():
    frame = pd.DataFrame({"code": ["1", "2", "?"] * 10, "y": ["1", "2", "?"] * 10})
    settled = settle(frame, data(categorical=["code"]), ["y"])
    assert not settled.problems and settled.frame["y"].tolist() == frame["y"].tolist()
    assert settled.kinds == {"code": "categorical"}


def test_new_rows_are_held_to_the_trained_kinds():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    spec = fit_features(train, train, ["x"], ["c"])
    fine = settle_like(pd.DataFrame({"x": ["4", ""], "c": ["a", "z"]}), data(), spec)
    assert not fine.problems and fine.frame["x"].tolist()[0] == 4.0
    assert fine.notes == ["column 'c': 1 of 2 rows hold categories not seen in training ('z'); "
                          "they are encoded as unknown"]
    bad = settle_like(pd.DataFrame({"x": ["0.12cm"] * 3, "c": ["a"] * 3}), data(), spec)
    assert [p.message for p in bad.problems] == [
        "feature column 'x' was numeric in training, but 3 of 3 non-empty cells here are not "
        "numbers"]
    lenient = settle_like(pd.DataFrame({"x": [str(i) for i in range(19)] + ["?"], "c": ["a"] * 20}),
                          data(bad_cells="missing"), spec)
    assert not lenient.problems and lenient.frame["x"].isna().sum() == 1
    assert "1 of 20 cells are not numbers ('?'); read as missing" in lenient.notes[0]


def test_new_rows_whose_dates_do_not_read_get_one_problem_not_two():
    train = pd.DataFrame({"when": ["2024-01-01", "2024-01-02", "2024-01-03"], "x": [1.0, 2.0, 3.0]})
    block = data(columns={"when": "datetime_ordinal"})
    settled = settle(train, block, [])
    spec = fit_features(settled.frame, settled.frame, ["when", "x"], [])
    new = settle_like(pd.DataFrame({"when": ["soon", "later"], "x": [1.0, 2.0]}), block, spec)
    # not also "was numeric in training": the date column is one problem, named once
    assert [p.message for p in new.problems] == ["feature column 'when': 'when' holds no dates"]
