"""Properties of the strategies' maths, on hand-made gradients and synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.weighting.tiny_model import dataset, make_tasks, make_trainer


def conflicting_pairs(count: int = 20, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < count:
        g1, g2 = rng.normal(size=dim), rng.normal(size=dim) * rng.uniform(0.1, 10)
        if g1 @ g2 < 0:
            pairs.append(np.stack([g1, g2]).astype("float32"))
    return pairs


def test_pcgrad_projections_do_not_conflict():
    import tensorflow as tf

    from mtl_runner.weighting.pcgrad import project_conflicting

    for grads in conflicting_pairs():
        p1, p2 = project_conflicting(tf.constant(grads)).numpy()
        g1, g2 = grads
        scale = np.linalg.norm(g1) * np.linalg.norm(g2)
        assert p1 @ g2 >= -1e-5 * scale and p2 @ g1 >= -1e-5 * scale
        assert p1 @ p2 >= -1e-5 * scale


def test_pcgrad_leaves_agreeing_gradients_alone():
    import tensorflow as tf

    from mtl_runner.weighting.pcgrad import project_conflicting

    grads = np.array([[1.0, 2.0, 0.0], [0.5, 1.0, 3.0], [1.0, 0.0, 1.0]], "float32")
    np.testing.assert_allclose(project_conflicting(tf.constant(grads)).numpy(), grads, rtol=1e-6)


def test_mgda_matches_the_two_task_closed_form():
    import tensorflow as tf

    from mtl_runner.weighting.mgda import min_norm_weights

    rng = np.random.default_rng(1)
    cases = conflicting_pairs(10, seed=1) + [rng.normal(size=(2, 4)).astype("float32") for _ in range(10)]
    for grads in cases:
        g1, g2 = grads.astype("float64")
        alpha = np.clip(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)), 0.0, 1.0)
        solved = min_norm_weights(tf.constant(grads)).numpy()
        np.testing.assert_allclose(solved, [alpha, 1 - alpha], atol=1e-4)


def test_mgda_finds_a_descent_direction_for_three_tasks():
    import tensorflow as tf

    from mtl_runner.weighting.mgda import min_norm_weights

    grads = np.array([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.1], [0.2, 0.3, 1.0]], "float32")
    alpha = min_norm_weights(tf.constant(grads), 200).numpy()
    assert alpha.sum() == pytest.approx(1.0, abs=1e-5) and (alpha >= 0).all()
    direction = alpha @ grads
    assert (grads @ direction > 0).all()  # the min-norm point improves every task


def test_mgda_ignores_a_task_without_gradient():
    import tensorflow as tf

    from mtl_runner.weighting.mgda import min_norm_weights

    grads = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], "float32")
    np.testing.assert_allclose(min_norm_weights(tf.constant(grads)).numpy(), [0.5, 0, 0.5], atol=1e-4)


def test_dwa_weights_sum_to_the_number_of_tasks():
    from mtl_runner.weighting.dwa import dwa_weights

    latest, previous = np.array([0.5, 0.9, 0.2], "float32"), np.array([1.0, 1.0, 0.4], "float32")
    weights = dwa_weights(latest, previous, 2.0).numpy()
    assert weights.sum() == pytest.approx(3.0, rel=1e-6)
    assert weights[1] > weights[0] == pytest.approx(weights[2])  # slowest falling: most weight


def test_dwa_uses_the_last_two_epochs_after_the_second():
    trainer, _, tasks = make_trainer("dwa")
    step = np.int64(0)
    np.testing.assert_allclose(trainer.weighting.weights(None, step).numpy(), [1, 1, 1])
    for epoch, losses in enumerate([[1.0, 1.0, 1.0], [0.5, 0.9, 1.0]]):
        trainer.weighting.on_epoch_end(epoch, {f"{t}_loss": v for t, v in zip(tasks, losses)})
    weights = trainer.weighting.weights(None, step).numpy()
    assert weights.sum() == pytest.approx(3.0, rel=1e-6)
    assert weights[0] < weights[1] < weights[2]


def test_uncertainty_learns_the_noisier_task_has_the_larger_variance():
    import keras

    rng = np.random.default_rng(0)
    tasks = make_tasks(("regression",))
    tasks["noisy"] = type(tasks["size"])("noisy", tasks["size"].config)
    trainer, network, _ = make_trainer("uncertainty", tasks, learning_rate=0.05)
    trainer.compile(optimizer=keras.optimizers.Adam(0.05))
    x = rng.normal(size=(256, 5)).astype("float32")
    signal = x[:, :1] - x[:, 1:2]
    y = {"size": signal + rng.normal(scale=0.1, size=(256, 1)).astype("float32"),
         "noisy": signal + rng.normal(scale=1.0, size=(256, 1)).astype("float32")}
    mask = {t: np.ones(256, "float32") for t in y}
    trainer.fit(dataset(({"x": x}, y, mask), 64), epochs=40, verbose=0, shuffle=False)
    quiet, noisy = trainer.weighting.log_variance.numpy()
    assert noisy > quiet + 2.0  # log σ² → log MSE: about log 1 = 0 and log 0.01 = −4.6
    assert noisy == pytest.approx(0.0, abs=0.7)


def test_uncertainty_forms_are_half_for_regression():
    trainer, _, tasks = make_trainer("uncertainty")
    assert dict(zip(tasks, trainer.weighting.forms)) == {"size": 0.5, "kind": 1.0, "flag": 1.0}
    np.testing.assert_allclose(trainer.weighting.weights(None, 0).numpy(), [0.5, 1.0, 1.0])


def test_gradnorm_pulls_the_faster_gradient_down():
    import tensorflow as tf

    from mtl_runner.weighting.gradnorm import gradnorm_weight_gradient

    w = tf.constant([1.0, 1.0])
    norms = tf.constant([10.0, 1.0])  # task 0's gradient is ten times larger
    losses = initial = tf.constant([1.0, 1.0])
    gradient, objective = gradnorm_weight_gradient(w, norms, losses, initial, 1.5)
    assert gradient.numpy()[0] > 0 > gradient.numpy()[1]
    assert objective.numpy() == pytest.approx(9.0)  # |10 − 5.5| + |1 − 5.5|


def test_gradnorm_weights_stay_normalised():
    trainer, _, tasks = make_trainer("gradnorm")
    from tests.unit.weighting.tiny_model import make_batch

    trainer.fit(dataset(make_batch(tasks), 8), epochs=2, verbose=0, shuffle=False)
    weights = trainer.weighting.task_weight.numpy()
    assert weights.sum() == pytest.approx(3.0, rel=1e-5) and (weights > 0).all()
    assert not np.allclose(weights, 1.0)


def test_cagrad_with_c_zero_is_the_average_gradient():
    import tensorflow as tf

    from mtl_runner.weighting.cagrad import cagrad_coefficients

    grads = tf.constant(conflicting_pairs(1)[0])
    np.testing.assert_allclose(cagrad_coefficients(grads, c=0.0).numpy(), [0.5, 0.5], atol=1e-6)


def test_cagrad_improves_the_worse_task_more_than_the_average():
    import tensorflow as tf

    from mtl_runner.weighting.cagrad import cagrad_coefficients

    grads = np.array([[1.0, 0.0], [-0.8, 0.3]], "float32")
    d = cagrad_coefficients(tf.constant(grads), c=0.5).numpy() @ grads
    average = grads.mean(axis=0)
    assert min(grads @ d) > min(grads @ average)


def test_rlw_draws_fresh_weights_on_the_simplex():
    trainer, _, _ = make_trainer("rlw")
    first, again, second = (trainer.weighting.weights(None, s).numpy() for s in (0, 0, 1))
    assert first.sum() == pytest.approx(1.0, rel=1e-6) and (first > 0).all()
    np.testing.assert_allclose(first, again)
    assert not np.allclose(first, second)


def test_gradient_agreement_counts_conflicting_pairs():
    import tensorflow as tf

    from mtl_runner.training.multitask_model import gradient_agreement

    grads = tf.constant([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    cosine, conflict, counted = (v.numpy() for v in gradient_agreement(grads))
    assert cosine == pytest.approx(-1.0 / 3.0) and conflict == pytest.approx(1.0 / 3.0)
    assert counted == 1.0
