"""Metrics of model outputs against labels: the one scoring path of training and `mtl evaluate`.

Training scores every split when it ends (`training.evaluate`), `mtl evaluate` scores new data
with a finished run (`inference`); both write metrics.csv rows through `score_outputs`, so the
same predictions give the same numbers in either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtl_runner.tasks.base import EncodedLabels, TaskType

METRIC_COLUMNS = ("task", "metric", "split", "value", "n")


def score_outputs(tasks: dict[str, TaskType], labels: dict[str, EncodedLabels],
                  outputs: dict[str, np.ndarray], split: str) -> list[dict]:
    """Each labelled task's metrics on one split, counting only examples with its label.

    Args:
        tasks: task objects by name.
        labels: encoded labels of the tasks to score, by name (a task absent here is skipped).
        outputs: the model's output by task name, one row per example.
        split: the split name written in each row.

    Returns:
        metrics.csv rows (`METRIC_COLUMNS`), in the order of `labels`; a task without any
        labelled example has none.
    """
    rows = []
    for name, encoded in labels.items():
        keep = encoded.mask > 0
        if not keep.any():
            continue
        scores = tasks[name].score(encoded.y[keep], outputs[name][keep], encoded.info)
        rows += [{"task": name, "metric": metric, "split": split, "value": value,
                  "n": int(keep.sum())} for metric, value in scores.items()]
    return rows


def metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows from `score_outputs` as a tidy frame with the metrics.csv columns."""
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
