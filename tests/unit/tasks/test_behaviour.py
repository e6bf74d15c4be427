"""What each task type decides on its own: decoding, serving info, metric directions, strata."""

import numpy as np
import pytest

from mtl_runner.recipe.schema import TaskConfig
from mtl_runner.tasks import TASK_TYPES
from mtl_runner.tasks.base import HIGHER_IS_BETTER


def task(kind: str, name: str = "t", **config):
    return TASK_TYPES.get(kind)(name, TaskConfig(type=kind, **config))


def test_classification_decodes_the_likeliest_class_and_its_probability():
    output = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    columns = task("classification", "kind", label="y").decode(output, {"classes": ["a", "b", "c"]})
    assert list(columns) == ["kind", "kind_probability"]
    assert columns["kind"].tolist() == ["b", "a"]
    assert columns["kind_probability"].tolist() == [0.7, 0.5]
    every = task("classification", "kind", label="y").decode(output, {"classes": ["a", "b", "c"]},
                                                             probabilities="all")
    assert every["kind_p_c"].tolist() == [0.2, 0.3]


def test_binary_decodes_the_positive_probability_into_either_class():
    info = {"classes": ["female", "male"], "positive": "male"}
    columns = task("binary", "sex", label="s").decode(np.array([[0.8], [0.25]]), info, "all")
    assert columns["sex"].tolist() == ["male", "female"]
    assert columns["sex_probability"].tolist() == pytest.approx([0.8, 0.75])
    assert columns["sex_p_female"].tolist() == pytest.approx([0.2, 0.75])


def test_multilabel_decodes_every_label_past_one_half():
    columns = task("multilabel", "tags", label="tags").decode(
        np.array([[0.9, 0.6], [0.1, 0.4]]), {"classes": ["p", "q"]})
    assert columns["tags"].tolist() == ["p|q", ""]
    assert columns["tags_p_q"].tolist() == [0.6, 0.4]


def test_regression_decodes_into_the_data_units_one_column_per_label():
    info = {"columns": ["g"], "mean": [2000.0], "scale": [1000.0]}
    assert task("regression", "mass", label="g").decode(np.array([[0.5]]), info) == {"mass": [2500.0]}
    info = {"columns": ["a", "b"], "mean": [1.0, 10.0], "scale": [2.0, 1.0]}
    columns = task("regression", "size", label=["a", "b"]).decode(np.array([[1.0, -1.0]]), info)
    assert {k: v.tolist() for k, v in columns.items()} == {"size_a": [3.0], "size_b": [9.0]}


def test_serving_info_tells_a_server_how_to_read_each_output():
    binary = task("binary", label="s").serving_info({"classes": ["0", "1"], "positive": "1"})
    assert binary == {"type": "binary", "classes": ["0", "1"], "positive": "1",
                      "decode": "output = probability of the positive class"}
    regression = task("regression", label="g").serving_info(
        {"columns": ["g"], "mean": [2.0], "scale": [3.0]})
    assert regression["decode"] == "value = output * scale + mean" and regression["mean"] == [2.0]
    for kind in ("classification", "multilabel"):
        info = task(kind, label="y").serving_info({"classes": ["a", "b"]})
        assert info == {"type": kind, "classes": ["a", "b"],
                        "decode": "output[j] = probability of classes[j]"}


def test_metric_directions_come_from_the_types_and_agree_across_them():
    assert TASK_TYPES.get("regression").higher_is_better("r2") is True
    assert TASK_TYPES.get("regression").higher_is_better("rmse") is False
    for _, kind in TASK_TYPES.items():
        assert kind.primary_metric in kind.default_metrics
        assert set(kind.default_metrics) <= set(kind.metrics)
        for metric, higher in kind.metrics.items():
            assert HIGHER_IS_BETTER[metric] is higher
    assert HIGHER_IS_BETTER["loss"] is False


def test_a_type_that_reverses_a_known_metric_is_refused():
    from mtl_runner.tasks.base import TaskType

    with pytest.raises(TypeError, match="'auc' is better lower here"):
        type("Odd", (TaskType,), {"metrics": {"auc": False}})


def test_only_class_labels_stratify_and_need_one_column():
    assert {n for n, kind in TASK_TYPES.items() if kind.stratifies} == {"binary", "classification"}
    assert {n for n, kind in TASK_TYPES.items() if kind.one_label_column} == \
        {"binary", "classification"}
    assert {n for n, kind in TASK_TYPES.items() if kind.numeric_labels} == {"regression"}
