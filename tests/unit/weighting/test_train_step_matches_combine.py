"""One `MultiTaskModel.train_step` applies exactly the update each strategy's rule defines.

For every strategy, the per-task gradients are taken here with their own `tf.GradientTape` on
the same batch, the paper's rule is written out in NumPy (solvers solved independently with
SciPy), and the change of the shared variables after one plain-SGD step must be −lr times that
direction. Heads must move by −lr · w_i ∇L_i. Tolerance: ‖Δθ + lr g‖ ≤ 1e-3 ‖lr g‖ (float32
training step against a float64 reference).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from tests.unit.weighting.tiny_model import ROWS, dataset, make_batch, make_network, make_tasks

LR = 0.1
TOLERANCE = 1e-3
RECIPE_WEIGHTS = {"size": 2.0, "kind": 0.5, "flag": 1.0}


def two_layer_network(tasks, features: int = 5, seed: int = 0):
    """Dense(4) → Dense(3) trunk: the last shared layer is a strict part of the shared weights."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(features,), name="x")
    hidden = keras.layers.Dense(4, activation="tanh", name="shared_dense_0")(inputs)
    hidden = keras.layers.Dense(3, activation="tanh", name="shared_dense_1")(hidden)
    units = {"size": 1, "kind": 3, "flag": 1}
    outputs = {name: keras.layers.Dense(units[name], activation=task.activation, name=name)(hidden)
               for name, task in tasks.items()}
    return keras.Model({"x": inputs}, outputs)


def build(strategy: str, weights=None, network_fn=make_network, **options):
    import keras

    from mtl_runner.training.multitask_model import MultiTaskModel
    from mtl_runner.weighting import WEIGHTINGS

    keras.backend.clear_session()
    tasks = make_tasks()
    weights = weights or {name: 1.0 for name in tasks}
    cls = WEIGHTINGS.get(strategy)
    weighting = cls(cls.Config(name=strategy, **options), weights)
    network = network_fn(tasks)
    trainer = MultiTaskModel(network, tasks, weighting, weights)
    trainer.compile(optimizer=keras.optimizers.SGD(LR))
    return trainer, network, tasks


def shared_variables(network) -> list:
    return [v for layer in network.layers if layer.name.startswith("shared_")
            for v in layer.trainable_variables]


def reference(network, tasks, batch, weights):
    """(c_i L_i, rows of G = ∇_shared c_i L_i, head gradients of c_i L_i), all float64."""
    import tensorflow as tf

    x, y, mask = batch
    shared = shared_variables(network)
    with tf.GradientTape(persistent=True) as tape:
        predictions = network(x, training=True)
        losses = [weights[t] * tf.reduce_mean(tasks[t].keras_loss()(y[t], predictions[t]) * mask[t])
                  for t in tasks]
    rows = [np.concatenate([g.numpy().ravel() for g in tape.gradient(loss, shared)])
            for loss in losses]
    heads = {t: np.concatenate([g.numpy().ravel() for g in
                                tape.gradient(loss, network.get_layer(t).trainable_variables)])
             for t, loss in zip(tasks, losses)}
    return (np.array([float(v) for v in losses]), np.array(rows, "float64"),
            {t: h.astype("float64") for t, h in heads.items()})


def snapshot(variables) -> np.ndarray:
    return np.concatenate([np.array(v.numpy(), "float64").ravel() for v in variables])


def one_step(strategy: str, weights=None, network_fn=make_network, prepare=None, **options):
    """Trains one SGD step; returns the reference quantities, the moves and the logs."""
    trainer, network, tasks = build(strategy, weights, network_fn, **options)
    weights = weights or {name: 1.0 for name in tasks}
    if prepare:
        trainer.network_tasks = tasks
        prepare(trainer)
    batch = make_batch(tasks)
    losses, grads, head_grads = reference(network, tasks, batch, weights)
    shared, heads = shared_variables(network), {t: network.get_layer(t).trainable_variables
                                                for t in tasks}
    before = snapshot(shared), {t: snapshot(v) for t, v in heads.items()}
    history = trainer.fit(dataset(batch, ROWS), epochs=1, verbose=0, shuffle=False)
    moved = snapshot(shared) - before[0], {t: snapshot(v) - before[1][t] for t, v in heads.items()}
    logs = {k: v[-1] for k, v in history.history.items()}
    return trainer, tasks, losses, grads, head_grads, moved, logs


def assert_sgd_step(moved, direction):
    expected = -LR * np.asarray(direction)
    gap = np.linalg.norm(moved - expected)
    # relative, with a floor for a task whose weight is 0 (float32 rounding of the variables)
    assert gap <= TOLERANCE * np.linalg.norm(expected) + 1e-7, (gap, np.linalg.norm(expected))


def assert_step(tasks, grads, head_grads, moved, shared_direction, head_weights):
    assert_sgd_step(moved[0], shared_direction)
    for i, task in enumerate(tasks):
        assert_sgd_step(moved[1][task], head_weights[i] * head_grads[task])


def simplex_minimum(objective, count: int, starts: int = 6) -> np.ndarray:
    """argmin over the simplex: SLSQP from the centre, the vertices and random points."""
    rng = np.random.default_rng(0)
    points = [np.full(count, 1.0 / count), *np.eye(count),
              *rng.dirichlet(np.ones(count), size=starts)]
    best = None
    for start in points:
        found = minimize(objective, start, method="SLSQP", bounds=[(0.0, 1.0)] * count,
                         constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0}],
                         options={"ftol": 1e-15, "maxiter": 500})
        w = np.clip(found.x, 0.0, None)
        w /= w.sum()
        if best is None or objective(w) < objective(best):
            best = w
    return best


# -- loss level ------------------------------------------------------------------------------------


def test_static_scales_each_loss_by_its_recipe_weight():
    _, tasks, losses, grads, heads, moved, logs = one_step("static", RECIPE_WEIGHTS)
    assert_step(tasks, grads, heads, moved, grads.sum(axis=0), [1.0, 1.0, 1.0])
    for task in tasks:
        assert logs[f"weight_{task}"] == pytest.approx(RECIPE_WEIGHTS[task])
    assert logs["loss"] == pytest.approx(losses.sum(), rel=1e-5)  # Σ_i c_i L_i
    # not the unweighted sum: the weights must matter for the test to mean anything
    assert np.linalg.norm(grads.sum(axis=0) - (grads / np.array([2.0, 0.5, 1.0])[:, None]).sum(0)) \
        > 0.05 * np.linalg.norm(grads.sum(axis=0))


def test_uncertainty_weights_by_exp_minus_log_variance_and_learns_it():
    s0 = 0.7
    trainer, tasks, losses, grads, heads, moved, _ = one_step(
        "uncertainty", RECIPE_WEIGHTS, initial_log_variance=s0)
    forms = np.array([0.5, 1.0, 1.0])  # size is a regression: 1/(2σ²)
    w = forms * np.exp(-s0)
    assert_step(tasks, grads, heads, moved, w @ grads, w)
    # ∂/∂s_i [c_i e^{−s_i} L_i + s_i / 2] = −c_i e^{−s_i} L_i + 1/2
    expected = s0 - LR * (-forms * np.exp(-s0) * losses + 0.5)
    np.testing.assert_allclose(trainer.weighting.log_variance.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 4.0])
def test_dwa_step_uses_the_softmax_of_loss_ratios(temperature):
    latest, previous = np.array([0.5, 0.9, 0.3]), np.array([1.0, 1.0, 0.4])

    def prepare(trainer):
        trainer.weighting.history.assign(np.stack([latest, previous]).astype("float32"))
        trainer.weighting.epochs_seen.assign(2.0)

    _, tasks, _, grads, heads, moved, logs = one_step("dwa", prepare=prepare,
                                                      temperature=temperature)
    ratio = latest / previous
    w = 3 * np.exp(ratio / temperature) / np.exp(ratio / temperature).sum()
    assert_step(tasks, grads, heads, moved, w @ grads, w)
    np.testing.assert_allclose([logs[f"weight_{t}"] for t in tasks], w, rtol=1e-5)


def test_rlw_step_uses_the_softmax_of_its_seeded_normal_draw():
    import tensorflow as tf

    _, tasks, _, grads, heads, moved, logs = one_step("rlw", seed=7)
    # the draw: λ̃ ~ N(0, I) from the stateless seed (seed, step) with step 0 for the first step
    draw = tf.random.stateless_normal([3], seed=tf.constant([7, 0], tf.int64)).numpy()
    w = np.exp(draw) / np.exp(draw).sum()
    assert_step(tasks, grads, heads, moved, w @ grads, w)
    # whatever the draw: the move is −lr Σ w_i g_i with w on the simplex, the logged weights
    recovered, *_ = np.linalg.lstsq(grads.T, -moved[0] / LR, rcond=None)
    assert recovered.sum() == pytest.approx(1.0, abs=1e-3) and (recovered > 0).all()
    np.testing.assert_allclose(recovered, [logs[f"weight_{t}"] for t in tasks], atol=2e-3)


# -- gradient level ----------------------------------------------------------------------------------


def pcgrad_rule(grads, orders) -> np.ndarray:
    """Σ_i g_i^PC with task i projected off the others in `orders[i]` (Yu et al., Alg. 1)."""
    total = np.zeros(grads.shape[1])
    for i, order in enumerate(orders):
        g = grads[i].copy()
        for j in order:
            if g @ grads[j] < 0:
                g = g - (g @ grads[j]) / (grads[j] @ grads[j]) * grads[j]
        total += g
    return total


def test_pcgrad_step_projects_in_the_seeded_random_order():
    import tensorflow as tf

    _, tasks, _, grads, heads, moved, _ = one_step("pcgrad", RECIPE_WEIGHTS, seed=3)
    cosine = grads @ grads.T
    assert (cosine[np.triu_indices(3, 1)] < 0).any()  # some pair conflicts on this batch
    others = [[j for j in range(3) if j != i] for i in range(3)]
    # the order of task i: its other tasks sorted by a stateless uniform draw of (seed + i, step)
    orders = [[others[i][k] for k in np.argsort(tf.random.stateless_uniform(
        [2], seed=tf.constant([3 + i, 0], tf.int64)).numpy())] for i in range(3)]
    assert_step(tasks, grads, heads, moved, pcgrad_rule(grads, orders), [1.0, 1.0, 1.0])
    # whatever the draw: the move is one of the PCGrad updates of some order per task
    candidates = [pcgrad_rule(grads, choice) for choice in itertools.product(
        *[list(itertools.permutations(o)) for o in others])]
    assert min(np.linalg.norm(moved[0] + LR * c) for c in candidates) <= \
        TOLERANCE * np.linalg.norm(LR * candidates[0])


@pytest.mark.parametrize("normalize", ["none", "l2", "loss"])
def test_mgda_step_is_the_min_norm_point_of_the_hull(normalize):
    _, tasks, losses, grads, heads, moved, logs = one_step("mgda", RECIPE_WEIGHTS,
                                                           normalize=normalize)
    scales = {"none": np.ones(3), "l2": np.linalg.norm(grads, axis=1), "loss": losses}[normalize]
    scaled = grads / scales[:, None]
    gram = scaled @ scaled.T
    alpha = simplex_minimum(lambda a: a @ gram @ a, 3)
    # shared: Σ α_i g̃_i with g̃_i the rescaled gradients; heads: α_i ∇L_i (the module's docstring)
    assert_step(tasks, scaled, heads, moved, alpha @ scaled, alpha)
    np.testing.assert_allclose([logs[f"weight_{t}"] for t in tasks],
                               alpha * np.array([2.0, 0.5, 1.0]), atol=1e-3)


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_step_solves_its_objective(c):
    _, tasks, _, grads, heads, moved, _ = one_step("cagrad", RECIPE_WEIGHTS, c=c)
    g0 = grads.mean(axis=0)
    root_phi = c * np.linalg.norm(g0)

    def objective(w):  # g_wᵀ g_0 + √φ ‖g_w‖
        gw = w @ grads
        return gw @ g0 + root_phi * np.linalg.norm(gw)

    w = simplex_minimum(objective, 3)
    gw = w @ grads
    lam = root_phi / np.linalg.norm(gw)
    coefficients = (1.0 / 3 + lam * w) / (1 + c * c)
    assert_step(tasks, grads, heads, moved, coefficients @ grads, coefficients)


@pytest.mark.parametrize("alpha", [0.0, 1.5])
def test_gradnorm_step_trains_weights_on_the_last_shared_layer_rates(alpha):
    start = np.array([1.5, 0.5, 1.0])

    def prepare(trainer):
        losses = reference(trainer.network, trainer.network_tasks, make_batch(trainer.network_tasks),
                           RECIPE_WEIGHTS)[0]
        trainer.weighting.task_weight.assign(start.astype("float32"))
        trainer.weighting.started.assign(1.0)
        trainer.weighting.initial_losses.assign((factors * losses).astype("float32"))

    # L_i(0) / L_i(t): the losses moved. G_W ≈ (6.5, 0.05, 0.25) here, mean 2.27: with these
    # rates r = (2.5, 0.25, 0.25) task 1's target is above its G_W for α = 1.5, below for α = 0
    factors = np.array([0.1, 1.0, 1.0])
    trainer, tasks, losses, grads, heads, moved, _ = one_step(
        "gradnorm", RECIPE_WEIGHTS, two_layer_network, prepare, alpha=alpha)
    assert_step(tasks, grads, heads, moved, start @ grads, start)

    # W: the last shared layer, shared_dense_1 (kernel 4×3 and bias 3, after shared_dense_0's 24)
    norms = np.linalg.norm(grads[:, 4 * 5 + 4:], axis=1)
    assert grads.shape[1] == 24 + 15
    g = start * norms
    ratio = 1.0 / factors
    rate = ratio / ratio.mean()
    target = g.mean() * rate ** alpha
    weight_gradient = np.sign(g - target) * norms  # ∂ Σ|G_i − target_i| / ∂w_i
    stepped = np.maximum(start - LR * weight_gradient, 1e-3)
    expected = 3 * stepped / stepped.sum()
    np.testing.assert_allclose(trainer.weighting.task_weight.numpy(), expected, rtol=1e-5)
    # the same rule on the whole shared vector, or without α, would land elsewhere
    whole = np.linalg.norm(grads, axis=1)
    g_whole = start * whole
    wrong = np.maximum(start - LR * np.sign(g_whole - g_whole.mean() * rate ** alpha) * whole, 1e-3)
    assert not np.allclose(3 * wrong / wrong.sum(), expected, rtol=1e-3)
    if alpha:
        flat = np.maximum(start - LR * np.sign(g - g.mean()) * norms, 1e-3)
        assert not np.allclose(3 * flat / flat.sum(), expected, rtol=1e-3)


def test_dwa_weights_inside_fit_follow_the_logged_epoch_losses():
    """Through the epoch hook: epoch t ≥ 3 trains with T·softmax((L(t−1)/L(t−2))/τ)."""
    logged = {}
    for temperature in (0.1, 10.0):
        trainer, network, tasks = build("dwa", temperature=temperature)
        import keras

        trainer.compile(optimizer=keras.optimizers.SGD(0.5))
        history = trainer.fit(dataset(make_batch(tasks), 16), epochs=4, verbose=0,
                              shuffle=False).history
        for epoch in (0, 1):
            np.testing.assert_allclose([history[f"weight_{t}"][epoch] for t in tasks], 1.0)
        for epoch in (2, 3):
            ratio = np.array([history[f"{t}_loss"][epoch - 1] / history[f"{t}_loss"][epoch - 2]
                              for t in tasks])
            w = 3 * np.exp(ratio / temperature) / np.exp(ratio / temperature).sum()
            np.testing.assert_allclose([history[f"weight_{t}"][epoch] for t in tasks], w,
                                       rtol=1e-4)
        logged[temperature] = np.array([history[f"weight_{t}"][3] for t in tasks])
    # the temperature matters: a low one sharpens the weights, a high one flattens them
    assert np.ptp(logged[0.1]) > 10 * np.ptp(logged[10.0]) > 0
