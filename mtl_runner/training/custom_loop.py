"""mtl's own epoch loop: what `keras.Model.fit` does, written out for any distribution strategy.

Keras 3.15's `fit` fails on its first step under `MultiWorkerMirroredStrategy` (a PerReplica
value it cannot convert: keras-team/keras#20585, #20329), while the model's own `train_step`
runs there without trouble when called through `strategy.run` on a dataset distributed with
`strategy.experimental_distribute_dataset` — the custom-loop recipe of TensorFlow's
"Custom training loop with Keras and MultiWorkerMirroredStrategy" tutorial. This module does
exactly that and drives the same Keras callbacks `fit` would (history, early stopping,
checkpoints, progress), so every weighting strategy and callback behaves alike on every
strategy.

The training step is `MultiTaskModel.train_step` itself: it divides the objective by the
number of replicas in sync (over all workers), so the optimizer's sum of the replicas'
gradients is the gradient of the global batch. Epoch logs are read from the model's metrics in
cross-replica context, where their on-read variables are summed over every replica of every
worker; every worker therefore sees the same logs and takes the same decisions (early
stopping, NaN stop), which keeps the workers in lockstep.
"""

from __future__ import annotations

import re

import keras


def pythonify(logs: dict) -> dict:
    return {name: float(keras.ops.convert_to_numpy(value)) for name, value in logs.items()}


class CustomLoop:
    """Trains `model` (a compiled `MultiTaskModel`) with `strategy.run`.

    Example:
        >>> loop = CustomLoop(trainer)
        >>> history = loop.fit(train_dataset, validation_data=val_dataset, epochs=5,
        ...                    steps_per_epoch=20, validation_steps=3, callbacks=[...])
        >>> history.history["loss"]
    """

    def __init__(self, model: keras.Model):
        import tensorflow as tf

        self.model = model
        self.strategy = model.distribute_strategy
        strategy = self.strategy

        @tf.function(autograph=False)  # plain Python control flow; strategy.run traces it
        def train_step(iterator):
            strategy.run(model.train_step, args=(next(iterator),))

        @tf.function(autograph=False)  # plain Python control flow; strategy.run traces it
        def test_step(iterator):
            strategy.run(model.test_step, args=(next(iterator),))

        self.train_step, self.test_step = train_step, test_step

    def build(self, dataset) -> None:
        """Creates the model's, metrics' and optimizer's variables from one local batch (on every
        worker at the same point: their initial values are broadcast from the chief)."""
        batch = next(iter(dataset))
        with self.strategy.scope():
            self.model._symbolic_build(data_batch=batch)

    def logs(self, training: bool) -> dict:
        return pythonify(self.model.epoch_logs(training))

    def fit(self, train_data, validation_data=None, initial_epoch: int = 0, epochs: int = 1,
            steps_per_epoch: int = 1, validation_steps: int | None = None,
            callbacks: list | None = None, verbose: int = 0):
        """Like `keras.Model.fit` on an endless training dataset; returns the History callback."""
        import tensorflow as tf

        from mtl_runner.errors import RunError
        from mtl_runner.training.multitask_model import EpochHooks

        model = self.model
        self.build(train_data)
        train_iterator = iter(self.strategy.experimental_distribute_dataset(train_data))
        validation = (self.strategy.experimental_distribute_dataset(validation_data)
                      if validation_data is not None else None)
        callbacks = keras.callbacks.CallbackList(
            [EpochHooks(), *(callbacks or [])], add_history=True, add_progbar=verbose != 0,
            verbose=verbose, epochs=epochs, steps=steps_per_epoch, model=model)
        model.stop_training = False
        # the progress bar's running loss; across workers each read would be a collective that
        # every worker must join, and only the chief shows a bar, so it shows steps only there
        self.show_loss = verbose != 0 and not self.multi_worker()
        try:
            return self._fit(train_iterator, validation, initial_epoch, epochs, steps_per_epoch,
                             validation_steps, callbacks)
        except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError) as error:
            if not self.multi_worker():
                raise
            reason = re.sub(r"^\{\{.*?\}\}\s*", "", str(error).splitlines()[0])[:200]
            raise RunError(f"a worker stopped answering ({reason}); every worker must run until "
                           "the end. Start them all again with mtl train --resume <run id>") from None

    def multi_worker(self) -> bool:
        return getattr(self.strategy.extended, "_in_multi_worker_mode", lambda: False)()

    def _fit(self, train_iterator, validation, initial_epoch, epochs, steps_per_epoch,
             validation_steps, callbacks):
        model = self.model
        callbacks.on_train_begin()
        epoch_logs: dict = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            for step in range(steps_per_epoch):
                callbacks.on_train_batch_begin(step)
                self.train_step(train_iterator)
                callbacks.on_train_batch_end(step, pythonify(
                    {"loss": model.total_loss_tracker.result()}) if self.show_loss else {})
            epoch_logs = self.logs(training=True)
            if validation is not None:
                epoch_logs.update({f"val_{k}": v for k, v in
                                   self.evaluate(validation, validation_steps, callbacks).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        callbacks.on_train_end(logs=epoch_logs)
        return model.history

    def evaluate(self, distributed, steps: int, callbacks) -> dict:
        """One pass over a finite distributed dataset: every worker runs `steps` steps (the
        global batches; a replica whose share of the last one is empty computes nothing)."""
        self.model.reset_metrics()
        callbacks.on_test_begin()
        iterator = iter(distributed)
        for step in range(steps):
            callbacks.on_test_batch_begin(step)
            self.test_step(iterator)
            callbacks.on_test_batch_end(step, {})
        logs = self.logs(training=False)
        callbacks.on_test_end(logs)
        return logs
