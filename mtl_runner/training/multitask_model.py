"""The model `fit` trains: the functional network wrapped with a multi-task training step.

`MultiTaskModel` owns `train_step` (TensorFlow backend, `tf.GradientTape`) so that a weighting
strategy can act on the task losses (loss level) or on the per-task gradients of the shared
variables (gradient level). Only the wrapped network is saved; the wrapper adds the strategy's
own variables (uncertainty's log-variances, GradNorm's weights, DWA's loss history).

Logs, for training and (with the `val_` prefix) validation:

* `loss`: Σ_i c_i L_i with c_i each task's recipe `weight`, the same quantity for every
  strategy, so early stopping on `val_loss` compares like with like across epochs;
* `<task>_loss`: L_i, the task's loss over the batch, masked examples counting zero
  (Keras' `sum_over_batch_size`, as `compile` does);
* `<task>_<metric>`: the task's compiled metrics, masked the same way;
* `weight_<task>` (training only): the epoch's mean effective weight of L_i in the update;
* `grad_cosine`, `grad_conflict` (training only, with `weighting.telemetry`): the mean pairwise
  cosine similarity of the task gradients on the shared variables and the fraction of pairs with
  a negative cosine, averaged over the measured steps of the epoch (every `telemetry_every`-th
  step and each epoch's first). Under a distribution strategy the gradient-level strategies
  measure the global gradients; the loss-level ones average each replica's measurement.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mtl_runner.models.parts import split_variables
from mtl_runner.weighting.base import StepContext


def gradients(tape, target, variables, output_gradients=None) -> list:
    """`tape.gradient` with zeros (in the variable's dtype) for variables the target does not reach."""
    grads = tape.gradient(target, variables, output_gradients=output_gradients)
    return [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, variables)]


def flatten(tensors) -> tf.Tensor:
    return tf.concat([tf.reshape(tf.convert_to_tensor(t), [-1]) for t in tensors], axis=0)


def unflatten(vector, variables) -> list:
    sizes = [int(np.prod(v.shape)) for v in variables]
    return [tf.reshape(part, v.shape) for part, v in zip(tf.split(vector, sizes), variables)]


def gradient_agreement(grads):
    """Mean pairwise cosine similarity and fraction of conflicting pairs of the rows of G.

    Pairs with a zero gradient (a task without labels in the batch) are left out.

    Returns:
        (mean cosine, conflict fraction, 1.0 if any pair counted else 0.0).
    """
    count = grads.shape[0]
    norms = tf.norm(grads, axis=1)
    unit = grads / tf.maximum(norms, 1e-30)[:, None]
    cosine = tf.matmul(unit, unit, transpose_b=True)
    rows, cols = np.triu_indices(count, k=1)
    pairs = tf.stack([rows, cols], axis=1)
    values = tf.gather_nd(cosine, pairs)
    valid = tf.cast(tf.logical_and(tf.gather(norms, rows) > 0, tf.gather(norms, cols) > 0),
                    tf.float32)
    counted = tf.reduce_sum(valid)
    mean = tf.math.divide_no_nan(tf.reduce_sum(values * valid), counted)
    conflict = tf.math.divide_no_nan(tf.reduce_sum(tf.cast(values < 0, tf.float32) * valid), counted)
    return mean, conflict, tf.cast(counted > 0, tf.float32)


@dataclasses.dataclass
class _Step:
    """What one training step's forward pass hands to its update."""

    tape: Any
    shared: list  # the shared variables
    heads: list  # every head's variables, task by task
    context: Any  # the replica context
    replicas: int
    iterations: Any
    scales: Any  # each task's recipe weight c_i
    y_pred: Any
    raw: Any  # L_i
    losses: Any  # c_i L_i
    weights: Any  # the loss-level strategy's w_i (None at gradient level)
    scaled: Any  # the loss-level objective, scaled (None at gradient level)
    task_objectives: list
    scaled_regularization: Any
    measure: Any  # whether the telemetry is measured at this step


class MultiTaskModel(keras.Model):
    """A functional multi-task network with a training step that applies a weighting strategy.

    Args:
        network: the functional model, one output per task named after it.
        tasks: task objects by name (their losses).
        weighting: a `Weighting` instance (not yet built).
        task_weights: each task's recipe `weight` c_i (default 1).

    Example:
        >>> trainer = MultiTaskModel(network, tasks, WEIGHTINGS.get("pcgrad")(config, weights))
        >>> trainer.compile(optimizer="adam", weighted_metrics={...})
        >>> trainer.fit(dataset_of_x_y_masks, epochs=2)
    """

    def __init__(self, network: keras.Model, tasks: dict[str, Any], weighting,
                 task_weights: dict[str, float] | None = None, **kwargs):
        super().__init__(name=kwargs.pop("name", "multitask_trainer"), **kwargs)
        self.network = network
        self.task_names = list(tasks)
        self.loss_functions = {name: task.keras_loss() for name, task in tasks.items()}
        task_weights = task_weights or {}
        self.loss_scales = [float(task_weights.get(name, 1.0)) for name in self.task_names]
        self.weighting = weighting
        weighting.build(self, {name: task.name for name, task in tasks.items()})
        config = weighting.config
        self.telemetry = bool(getattr(config, "telemetry", False))
        self.telemetry_every = int(getattr(config, "telemetry_every", 10))
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.task_loss_trackers = [keras.metrics.Mean(name=f"{t}_loss") for t in self.task_names]
        self.weight_trackers = [keras.metrics.Mean(name=f"weight_{t}") for t in self.task_names]
        self.telemetry_trackers = ([keras.metrics.Mean(name="grad_cosine"),
                                    keras.metrics.Mean(name="grad_conflict")]
                                   if self.telemetry else [])
        # set at every epoch's start so that each epoch measures the telemetry at least once
        self.measure_next = self.add_weight(shape=(), initializer="ones", trainable=False,
                                            name="measure_next", aggregation="only_first_replica")

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)

    @property
    def metrics(self):
        own = [self.total_loss_tracker, *self.task_loss_trackers, *self.weight_trackers,
               *self.telemetry_trackers]
        rest = [m for m in super().metrics
                if m.name != "loss" and not any(m is o for o in own)]
        return own + rest

    # -- training ----------------------------------------------------------------------------
    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, with a callback that gives the strategy the epoch boundaries
        (mtl trains with `training.loop.Loop`; `fit` serves as its reference in the tests)."""
        kwargs["callbacks"] = [EpochHooks()] + list(kwargs.get("callbacks") or [])
        return super().fit(*args, **kwargs)

    def build_from_batch(self, batch) -> None:
        """Creates the metrics' variables from one (local) batch, as `fit` does before its first
        step, inside the strategy's scope (on every worker at the same point: their initial
        values are broadcast from the chief). Keras has no public call for it."""
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=batch)

    def begin_epoch(self) -> None:
        """An epoch starts: the gradient telemetry is measured on its first step."""
        self.measure_next.assign(1.0)

    def end_epoch(self, epoch: int, logs: dict) -> None:
        """An epoch ended with `logs`: the weighting strategy's epoch hook (DWA's history)."""
        self.weighting.on_epoch_end(epoch, dict(logs))

    def task_losses(self, y, y_pred, sample_weight) -> tf.Tensor:
        """L_i per task, shape (T,): Σ_b loss_b · mask_b / batch size."""
        losses = []
        for name in self.task_names:
            per_example = tf.cast(self.loss_functions[name](y[name], y_pred[name]), tf.float32)
            if sample_weight is not None and sample_weight.get(name) is not None:
                mask = tf.reshape(tf.cast(sample_weight[name], tf.float32), tf.shape(per_example))
                per_example = per_example * mask
            size = tf.cast(tf.size(per_example), tf.float32)
            losses.append(tf.math.divide_no_nan(tf.reduce_sum(per_example), size))
        return tf.stack(losses)

    def own_trainable_variables(self) -> list:
        """The strategy's trainable variables (uncertainty's log-variances)."""
        network = {id(v) for v in self.network.trainable_variables}
        extra = {id(v) for _, v in self._extra_variable_slots()}
        return [v for v in self.trainable_variables if id(v) not in network and id(v) not in extra]

    def update_variables(self) -> list:
        """The trainable variables in the order `train_step` hands them to the optimizer.

        The optimizer is built with this list before training (`compile_for_training`), so
        its slots have the same positions in every process, which checkpoints rely on: Keras
        would otherwise build it from the first `apply_gradients`, in an order that differs
        from `trainable_variables` once there are several tasks.
        """
        shared, heads, _ = split_variables(self.network, self.task_names)
        head_variables = [v for t in self.task_names for v in heads[t]]
        if self.weighting.level == "gradient":
            return shared + head_variables + [v for _, v in self._extra_variable_slots()]
        return shared + head_variables + self.own_trainable_variables()

    def _extra_variable_slots(self) -> list:
        """The strategy's variables that it updates by its own rule (GradNorm's weights)."""
        return [(None, v) for v in self.weighting.own_rule_variables()]

    def train_step(self, data):
        """One update: the task losses, the strategy's weights or combined gradient, the
        optimizer's step, the logs (see the module docstring)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        step = self._forward(x, y, sample_weight)
        if self.weighting.level == "gradient" and step.shared:
            pairs, weights, telemetry = self._gradient_level(step)
        elif self.weighting.level == "gradient":  # nothing shared trains (a heads-only stage):
            pairs, weights, telemetry = self._heads_only(step)  # nothing to combine
        else:
            pairs, weights, telemetry = self._loss_level(step)
        self.optimizer.apply_gradients(pairs)
        self.weighting.after_apply()
        if self.telemetry:
            cosine, conflict, counted = telemetry
            self.telemetry_trackers[0].update_state(cosine, sample_weight=counted)
            self.telemetry_trackers[1].update_state(conflict, sample_weight=counted)
            self.measure_next.assign(0.0)
        effective = weights * step.scales
        for i in range(len(self.task_names)):
            self.weight_trackers[i].update_state(effective[i])
        return self._update_metrics(x, y, step.y_pred, sample_weight, step.raw, step.scales,
                                    training=True)

    def _forward(self, x, y, sample_weight) -> "_Step":
        """The forward pass on a tape: task losses, the loss-level objective, and what the
        gradients are taken of."""
        shared, heads, last = split_variables(self.network, self.task_names)
        gradient_level = self.weighting.level == "gradient"
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        iterations = self.optimizer.iterations
        scales = tf.constant(self.loss_scales, tf.float32)
        self.weighting.bind(StepContext(iterations, shared, last_layer_slice(shared, last)))
        weights = scaled = None
        with tf.GradientTape(persistent=gradient_level or self.telemetry) as tape:
            y_pred = self(x, training=True)
            raw = self.task_losses(y, y_pred, sample_weight)
            losses = raw * scales
            regularization = (tf.add_n([tf.cast(l, tf.float32) for l in self.network.losses])
                              if self.network.losses else tf.constant(0.0))
            if not gradient_level:
                weights = tf.cast(self.weighting.weights(losses, iterations), tf.float32)
                objective = (tf.reduce_sum(weights * losses) + self.weighting.regularizer()
                             + regularization)
                scaled = self.optimizer.scale_loss(objective / replicas)
            # per-task losses as the optimizer sees them (loss scaling under mixed precision),
            # unstacked on the tape so that each one's gradient can be taken
            task_objectives = tf.unstack(self.optimizer.scale_loss(losses))
            scaled_regularization = self.optimizer.scale_loss(regularization / replicas)
        measure = tf.logical_or(tf.equal(iterations % self.telemetry_every, 0),
                                tf.convert_to_tensor(self.measure_next) > 0)
        return _Step(tape, shared, [v for t in self.task_names for v in heads[t]], context,
                     replicas, iterations, scales, y_pred, raw, losses, weights, scaled,
                     task_objectives, scaled_regularization, measure)

    def _task_gradients(self, step: "_Step", reduce: bool = True):
        """G: each task's gradient on the shared variables, one flattened row per task."""
        grads = tf.stack([flatten(gradients(step.tape, objective, step.shared))
                          for objective in step.task_objectives])
        if step.replicas > 1 and reduce:  # every replica combines the same, global, gradients
            grads = step.context.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
        return grads

    def _gradient_level(self, step: "_Step"):
        """The strategy combines G into the shared gradient; each head gets w_i ∇L_i."""
        grads = self._task_gradients(step)
        global_losses = (step.context.all_reduce(tf.distribute.ReduceOp.MEAN, step.losses)
                         if step.replicas > 1 else step.losses)
        direction, weights = self.weighting.combine(grads, global_losses, step.iterations)
        weights = tf.cast(weights, tf.float32)
        shared_gradients = unflatten(direction / step.replicas, step.shared)
        # a head reaches only its own task's loss: its gradient is w_i ∇L_i (+ regularization)
        head_weights = tf.unstack(tf.stop_gradient(weights) / step.replicas)
        head_gradients = gradients(step.tape, step.task_objectives + [step.scaled_regularization],
                                   step.heads, head_weights + [tf.constant(1.0)])
        if self.network.losses:
            reg_shared = gradients(step.tape, step.scaled_regularization, step.shared)
            shared_gradients = [g + r for g, r in zip(shared_gradients, reg_shared)]
        pairs = list(zip(shared_gradients, step.shared)) + list(zip(head_gradients, step.heads))
        pairs += [(g / step.replicas, v) for g, v in self.weighting.extra_gradients()]
        telemetry = None
        if self.telemetry:
            cosine, conflict, counted = gradient_agreement(grads)
            telemetry = (cosine, conflict, counted * tf.cast(step.measure, tf.float32))
        return pairs, weights, telemetry

    def _heads_only(self, step: "_Step"):
        """A gradient-level strategy without shared variables: each head follows its own
        task's loss, weight 1 (the strategy's rule has nothing to act on)."""
        weights = tf.ones([len(self.task_names)], tf.float32)
        head_gradients = gradients(step.tape, step.task_objectives + [step.scaled_regularization],
                                   step.heads, tf.unstack(weights / step.replicas) + [tf.constant(1.0)])
        telemetry = (tf.constant(0.0), tf.constant(0.0), tf.constant(0.0))  # not measured
        return list(zip(head_gradients, step.heads)), weights, telemetry if self.telemetry else None

    def _loss_level(self, step: "_Step"):
        """One backward pass of Σ_i w_i L_i (+ the strategy's regularizer)."""
        variables = step.shared + step.heads + self.own_trainable_variables()
        pairs = list(zip(gradients(step.tape, step.scaled, variables), variables))
        telemetry = None
        if self.telemetry:
            telemetry = tf.cond(
                # no all-reduce inside a tf.cond: each replica measures its own gradients and
                # the trackers average the replicas
                step.measure, lambda: gradient_agreement(self._task_gradients(step, reduce=False)),
                lambda: (tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)))
        return pairs, step.weights, telemetry

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        raw = self.task_losses(y, y_pred, sample_weight)
        return self._update_metrics(x, y, y_pred, sample_weight, raw,
                                    tf.constant(self.loss_scales, tf.float32), training=False)

    def _update_metrics(self, x, y, y_pred, sample_weight, raw, scales, training: bool) -> dict:
        batch = tf.shape(tf.nest.flatten(y)[0])[0]
        self.total_loss_tracker.update_state(tf.reduce_sum(raw * scales), sample_weight=batch)
        for i, tracker in enumerate(self.task_loss_trackers):
            tracker.update_state(raw[i], sample_weight=batch)
        self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return self.epoch_logs(training)

    def epoch_logs(self, training: bool) -> dict:
        """The metrics' results so far: every metric in training; no task weights or gradient
        telemetry in validation (they describe updates); telemetry NaN when not measured."""
        logs = {}
        skipped = [] if training else self.weight_trackers + self.telemetry_trackers
        for metric in self.metrics:
            if any(metric is s for s in skipped):
                continue
            result = metric.result()
            if isinstance(result, dict):
                logs.update(result)
            elif any(metric is t for t in self.telemetry_trackers):
                logs[metric.name] = tf.where(metric.count > 0, result, float("nan"))
            else:
                logs[metric.name] = result
        return logs


def last_layer_slice(shared: list, last: list) -> tuple[int, int] | None:
    """Where the last shared layer's variables sit in the flattened shared gradient."""
    if not last:
        return None
    offsets, position = {}, 0
    for v in shared:
        offsets[id(v)] = (position, position + int(np.prod(v.shape)))
        position += int(np.prod(v.shape))
    spans = [offsets[id(v)] for v in last if id(v) in offsets]
    if not spans:
        return None
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    return (start, end) if end - start == sum(e - s for s, e in spans) else None


class EpochHooks(keras.callbacks.Callback):
    """Gives Keras' `fit` the epoch hooks mtl's loop calls (DWA's history, telemetry)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.model.begin_epoch()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.end_epoch(epoch, dict(logs or {}))
