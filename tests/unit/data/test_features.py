import numpy as np
import pandas as pd
import pytest

from mtl_runner.data.features import feature_arrays, fit_features, input_name, select_features
from mtl_runner.recipe.schema import DataConfig


def test_features_default_to_every_non_label_non_excluded_column():
    frame = pd.DataFrame({"a": [1.0], "b": ["x"], "y": [0], "id": [7]})
    data = DataConfig(source="csv", path="x.csv", exclude=["id"])
    assert select_features(frame, data, ["y"]) == (["a"], ["b"])


def test_explicit_categorical_columns_are_one_hot_even_if_numeric():
    frame = pd.DataFrame({"a": [1.0], "zip": [75001], "y": [0]})
    data = DataConfig(source="csv", path="x.csv", categorical=["zip"])
    assert select_features(frame, data, ["y"]) == (["a"], ["zip"])


def test_statistics_come_from_the_train_split_only():
    train = pd.DataFrame({"a": [1.0, 3.0, np.nan], "c": ["x", "y", None]})
    full = pd.concat([train, pd.DataFrame({"a": [100.0], "c": ["z"]})])
    spec = fit_features(train, full, ["a"], ["c"])
    assert spec.fill == [2.0]                     # mean of 1 and 3, not of 100
    assert spec.mean == [2.0]
    assert spec.variance == [pytest.approx(2 / 3)]
    assert spec.indicate == ["a"]
    assert spec.vocabulary == {"c": ["x", "y"]}  # 'z' is only in other splits


def test_arrays_keep_nan_and_turn_missing_categories_into_empty_strings():
    frame = pd.DataFrame({"bill length (mm)": [1.5, np.nan], "c": ["x", None]})
    spec = fit_features(frame, frame, ["bill length (mm)"], ["c"])
    arrays = feature_arrays(frame, spec)
    assert input_name("bill length (mm)") == "bill_length__mm_"
    assert arrays["bill_length__mm_"].shape == (2, 1) and np.isnan(arrays["bill_length__mm_"][1, 0])
    assert arrays["c"].ravel().tolist() == ["x", ""]
