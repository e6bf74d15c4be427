"""GradNorm: learn task weights that equalise the tasks' training rates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mtl_runner.weighting.base import WEIGHTINGS, Weighting, WeightingConfig


@WEIGHTINGS.register("gradnorm")
class GradNorm(Weighting):
    """Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive
    Loss Balancing in Deep Multitask Networks", ICML 2018.

    The network is trained on Σ_i w_i L_i. The weights w_i are trained at the same time, with
    the model's optimizer, on

        L_grad = Σ_i | G_W^(i) − Ḡ_W · r_i^α |,   G_W^(i) = ‖∇_W w_i L_i‖,

    where W are the weights of the last shared layer, Ḡ_W the mean of the G_W^(i),
    r_i = L̃_i / mean_j L̃_j the relative inverse training rate with L̃_i = L_i(t) / L_i(0), and
    the target Ḡ_W · r_i^α held constant. After every step the weights are renormalised so that
    Σ_i w_i = T (and kept above a small floor so that none turns negative). α sets how strongly
    the tasks are pulled to a common rate (the paper uses 0.12–3; 1.5 is a common default).
    """

    level = "gradient"

    class Config(WeightingConfig):
        name: Literal["gradnorm"] = "gradnorm"
        alpha: float = Field(1.5, ge=0.0, description="Restoring-force strength α.")
        min_weight: float = Field(1e-3, gt=0.0, description="Floor of every w_i before renormalising.")

    def build(self, model, task_types: dict[str, str]) -> None:
        super().build(model, task_types)
        # aggregation: every replica computes the same values, the first one's are kept
        self.task_weight = model.add_weight(shape=(self.num_tasks,), initializer="ones",
                                            trainable=True, name="gradnorm_weights",
                                            aggregation="only_first_replica")
        self.initial_losses = model.add_weight(shape=(self.num_tasks,), initializer="zeros",
                                               trainable=False, name="gradnorm_initial_losses",
                                               aggregation="only_first_replica")
        self.started = model.add_weight(shape=(), initializer="zeros", trainable=False,
                                        name="gradnorm_started", aggregation="only_first_replica")
        self._pending: list = []

    def combine(self, grads, losses, step):
        import tensorflow as tf

        started = tf.convert_to_tensor(self.started) > 0.0
        initial = tf.where(started, tf.convert_to_tensor(self.initial_losses), losses)
        self.initial_losses.assign(initial)
        self.started.assign(1.0)
        w = tf.convert_to_tensor(self.task_weight)
        # W: the last shared layer's weights (the step's context), all shared ones when unknown
        where = self.context.last_shared_slice if self.context is not None else None
        last = grads if where is None else grads[:, slice(*where)]
        norms = tf.norm(last, axis=1)                             # ‖∇_W L_i‖
        weight_gradient, _ = gradnorm_weight_gradient(w, norms, losses, initial, self.config.alpha)
        self._pending = [(weight_gradient, self.task_weight)]
        return tf.linalg.matvec(grads, w, transpose_a=True), w

    def own_rule_variables(self) -> list:
        return [self.task_weight]

    def extra_gradients(self) -> list:
        pending, self._pending = self._pending, []
        return pending

    def after_apply(self) -> None:
        import tensorflow as tf

        w = tf.maximum(tf.convert_to_tensor(self.task_weight), self.config.min_weight)
        self.task_weight.assign(self.num_tasks * w / tf.reduce_sum(w))


def gradnorm_weight_gradient(w, norms, losses, initial, alpha: float):
    """∂L_grad/∂w and L_grad for weights w, gradient norms ‖∇_W L_i‖ and losses L_i(t), L_i(0).

    G_i = w_i ‖∇_W L_i‖ is linear in w_i, so the gradient needs no second backward pass.
    """
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(w)
        g = w * norms
        ratio = losses / tf.maximum(initial, 1e-12)
        rate = ratio / tf.maximum(tf.reduce_mean(ratio), 1e-12)
        target = tf.stop_gradient(tf.reduce_mean(g) * tf.pow(rate, alpha))
        objective = tf.reduce_sum(tf.abs(g - target))
    return tape.gradient(objective, w), objective
