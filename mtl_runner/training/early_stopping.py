"""Early stopping whose progress lives in the `TrainingState`, so it survives a checkpoint.

The rule is Keras' `EarlyStopping` (keras/src/callbacks/early_stopping.py, Keras 3.15), written
out so that nothing depends on that callback's internals: after each epoch, a monitored value
that beats the best by more than `min_delta` becomes the best and resets the wait; otherwise the
wait grows, and training stops once it reaches `patience` (never after the very first epoch).
With `restore_best_weights`, the weights of the best epoch (the first epoch's until one is
better) are kept and put back when the stage ends, whether or not it stopped early.
"""

from __future__ import annotations

import numpy as np

from mtl_runner.tasks.base import HIGHER_IS_BETTER


def monitor_mode(monitor: str) -> str:
    """'max' for metrics where higher is better (accuracy, auc, ...), else 'min'."""
    for metric, higher in HIGHER_IS_BETTER.items():
        if monitor == metric or monitor.endswith("_" + metric):
            return "max" if higher else "min"
    return "min"


class EarlyStopping:
    """Decides after each epoch whether the stage goes on.

    Args:
        config: the recipe's `training.early_stopping` (monitor, patience, min_delta,
            restore_best_weights).
        progress: the progress a checkpoint recorded (`progress()`), None to start afresh.
        best_weights: the best weights that progress refers to.
    """

    def __init__(self, config, progress: dict | None = None, best_weights: list | None = None):
        self.monitor = config.monitor
        self.patience = config.patience
        self.min_delta = abs(config.min_delta)
        self.higher = monitor_mode(config.monitor) == "max"
        self.restore_best_weights = config.restore_best_weights
        progress = progress or {}
        self.wait = int(progress.get("wait", 0))
        self.best_epoch = int(progress.get("best_epoch", 0))
        self.best = progress.get("best")
        self.best_weights = best_weights

    def progress(self) -> dict:
        return {"wait": self.wait, "best_epoch": self.best_epoch,
                "best": None if self.best is None else float(self.best)}

    def improves(self, value: float) -> bool:
        if self.best is None:
            return True
        # in float32, as Keras compares (`ops.less` on the logged values)
        if self.higher:
            return bool(np.float32(value - self.min_delta) > np.float32(self.best))
        return bool(np.float32(value + self.min_delta) < np.float32(self.best))

    def update(self, epoch: int, logs: dict, weights) -> bool:
        """Records epoch `epoch` (0-based, over all stages); True when training should stop.

        Args:
            weights: a function returning the current weights (called only when they are kept).
        """
        value = logs.get(self.monitor)
        if value is None:
            return False
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = weights(), epoch
        self.wait += 1
        if self.improves(float(value)):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best_weights:
                self.best_weights = weights()
            return False
        return self.wait >= self.patience and epoch > 0

    def restore(self, model) -> None:
        """Puts the best weights back (at a stage's end), when they are kept."""
        if self.restore_best_weights and self.best_weights is not None:
            model.set_weights(self.best_weights)
