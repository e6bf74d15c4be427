"""Labels a trained encoding cannot take are found, never dropped unseen (evaluate)."""

import numpy as np
import pandas as pd

from mtl_runner.recipe.schema import TaskConfig
from mtl_runner.tasks import TASK_TYPES


def task(kind: str, **config):
    return TASK_TYPES.get(kind)("t", TaskConfig(type=kind, **config))


def test_classes_and_binary_values_the_run_never_saw():
    frame = pd.DataFrame({"y": ["a", "b", "d", None, ""], "f": [0, 1, 2, 1, np.nan]})
    rows, values, what = task("classification", label="y").unknown_labels(frame, {"classes": ["a", "b"]})
    assert rows.tolist() == [False, False, True, False, False] and values == ["d"]
    assert "not trained on (trained: a, b)" in what
    rows, values, _ = task("binary", label="f").unknown_labels(frame, {"classes": ["0", "1"],
                                                                        "positive": "1"})
    assert rows.tolist() == [False, False, True, False, False] and values == ["2"]


def test_words_in_regression_labels_and_odd_multilabel_values():
    frame = pd.DataFrame({"r": ["1.5", "heavy", None, " "], "m": [1, 2, 0, 1],
                          "tags": ["p|q", "z", None, "p"]})
    rows, values, what = task("regression", label="r").unknown_labels(frame, {})
    assert rows.tolist() == [False, True, False, False] and values == ["heavy"] and what == "not numbers"
    rows, values, _ = task("multilabel", label=["m"]).unknown_labels(frame, {"classes": ["m"]})
    assert rows.tolist() == [False, True, False, False] and values == ["2"]
    rows, values, _ = task("multilabel", label="tags").unknown_labels(frame, {"classes": ["p", "q"]})
    assert rows.tolist() == [False, True, False, False] and values == ["z"]
