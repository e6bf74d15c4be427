"""Label encoding and scoring of each task type, on hand-checkable numbers."""

import numpy as np
import pandas as pd
import pytest

from mtl_runner.recipe.schema import TaskConfig
from mtl_runner.tasks import TASK_TYPES


def task(kind: str, **config):
    return TASK_TYPES.get(kind)("t", TaskConfig(type=kind, **config))


def test_classification_one_hot_and_mask():
    t = task("classification", label="y")
    frame = pd.DataFrame({"y": ["b", "a", None, "c"]})
    info = t.fit_encoding(frame, frame)
    encoded = t.encode(frame, info)
    assert info["classes"] == ["a", "b", "c"]
    assert encoded.y.tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert encoded.mask.tolist() == [1, 1, 0, 1]


def test_numeric_classes_sort_numerically_and_ignore_float_formatting():
    t = task("classification", label="y")
    frame = pd.DataFrame({"y": [10.0, 2.0, np.nan, 1.0]})
    assert t.fit_encoding(frame, frame)["classes"] == ["1", "2", "10"]


def test_classification_scores():
    t = task("classification", label="y")
    y = np.eye(3)[[0, 1, 2, 2]]
    pred = np.eye(3)[[0, 1, 1, 2]]
    scores = t.score(y, pred, {"classes": ["a", "b", "c"]})
    assert scores["accuracy"] == 0.75
    assert scores["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_binary_positive_class_defaults_to_the_second_value():
    t = task("binary", label="sex")
    frame = pd.DataFrame({"sex": ["male", "female", None]})
    info = t.fit_encoding(frame, frame)
    encoded = t.encode(frame, info)
    assert info["positive"] == "male"
    assert encoded.y.ravel().tolist() == [1, 0, 0] and encoded.mask.tolist() == [1, 1, 0]


def test_binary_positive_class_from_the_recipe():
    t = task("binary", label="sex", positive="female")
    frame = pd.DataFrame({"sex": ["male", "female"]})
    assert t.encode(frame, t.fit_encoding(frame, frame)).y.ravel().tolist() == [0, 1]


def test_binary_scores():
    t = task("binary", label="y")
    y = np.array([[1], [0], [1], [0]], dtype="float32")
    prob = np.array([[0.9], [0.2], [0.4], [0.6]])
    scores = t.score(y, prob, {})
    assert scores["accuracy"] == 0.5 and scores["auc"] == 0.75 and scores["f1"] == 0.5


def test_multilabel_from_a_delimited_column():
    t = task("multilabel", label="tags", delimiter="|")
    frame = pd.DataFrame({"tags": ["a|b", "b", None]})
    info = t.fit_encoding(frame, frame)
    encoded = t.encode(frame, info)
    assert info["classes"] == ["a", "b"]
    assert encoded.y.tolist() == [[1, 1], [0, 1], [0, 0]] and encoded.mask.tolist() == [1, 1, 0]


def test_multilabel_from_columns():
    t = task("multilabel", label=["a", "b"])
    frame = pd.DataFrame({"a": [1, 0], "b": [1, 1]})
    encoded = t.encode(frame, t.fit_encoding(frame, frame))
    assert encoded.y.tolist() == [[1, 1], [0, 1]]


def test_regression_standardizes_with_train_statistics_and_scores_in_data_units():
    t = task("regression", label="g")
    train = pd.DataFrame({"g": [1000.0, 3000.0]})
    full = pd.DataFrame({"g": [1000.0, 3000.0, np.nan]})
    info = t.fit_encoding(full, train)
    assert info["mean"] == [2000.0] and info["scale"] == [1000.0]
    encoded = t.encode(full, info)
    assert encoded.y.ravel().tolist() == [-1.0, 1.0, 0.0] and encoded.mask.tolist() == [1, 1, 0]
    scores = t.score(encoded.y[:2], encoded.y[:2] + 0.1, info)  # 0.1 σ off = 100 g off
    assert scores["mae"] == pytest.approx(100.0) and scores["rmse"] == pytest.approx(100.0)


def test_regression_check_reports_the_first_non_numeric_value():
    t = task("regression", label="g")
    [(key, message, value)] = t.check(pd.DataFrame({"g": ["1", "heavy", "3"]}))
    assert key == "label" and "1 non-numeric" in message and value == "'heavy'"


def test_regression_can_train_on_the_raw_scale():
    t = task("regression", label="g", standardize=False)
    frame = pd.DataFrame({"g": [1000.0, 3000.0]})
    info = t.fit_encoding(frame, frame)
    assert info["mean"] == [0.0] and info["scale"] == [1.0]
    assert t.encode(frame, info).y.ravel().tolist() == [1000.0, 3000.0]
