"""One scoring function for training's metrics.csv and `mtl evaluate`."""

import numpy as np
import pytest

from mtl_runner.recipe.schema import TaskConfig
from mtl_runner.tasks import TASK_TYPES, EncodedLabels
from mtl_runner.tasks.scoring import METRIC_COLUMNS, metrics_frame, score_outputs


def task(kind: str, name: str, **config):
    return TASK_TYPES.get(kind)(name, TaskConfig(type=kind, **config))


def test_only_labelled_rows_count_and_a_task_without_labels_has_no_rows():
    tasks = {"kind": task("classification", "kind", label="k"),
             "size": task("regression", "size", label="s")}
    labels = {
        "kind": EncodedLabels(np.eye(2)[[0, 1, 1]].astype("float32"),
                              np.array([1, 1, 0], "float32"), {"classes": ["a", "b"]}),
        "size": EncodedLabels(np.zeros((3, 1), "float32"), np.zeros(3, "float32"),
                              {"columns": ["s"], "mean": [0.0], "scale": [1.0]}),
    }
    # the masked third row is predicted wrong: it must not lower the accuracy
    outputs = {"kind": np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1]]), "size": np.zeros((3, 1))}
    frame = metrics_frame(score_outputs(tasks, labels, outputs, "test"))
    assert list(frame.columns) == list(METRIC_COLUMNS)
    assert frame[["task", "metric", "split", "n"]].values.tolist() == [
        ["kind", "accuracy", "test", 2], ["kind", "macro_f1", "test", 2]]
    assert frame["value"].tolist() == [1.0, 1.0]


def test_rows_follow_the_labels_and_match_the_types_own_score():
    tasks = {"flag": task("binary", "flag", label="f", metrics=["auc", "accuracy"])}
    y = np.array([[1], [0], [1], [0]], "float32")
    labels = {"flag": EncodedLabels(y, np.ones(4, "float32"), {"classes": ["0", "1"]})}
    pred = np.array([[0.9], [0.2], [0.4], [0.6]])
    rows = score_outputs(tasks, labels, {"flag": pred}, "validation")
    assert [(r["metric"], r["value"]) for r in rows] == [("auc", pytest.approx(0.75)),
                                                         ("accuracy", 0.5)]
    assert score_outputs(tasks, {}, {"flag": pred}, "validation") == []
    assert metrics_frame([]).empty and list(metrics_frame([]).columns) == list(METRIC_COLUMNS)
