"""The solvers inside MGDA, CAGrad and PCGrad against brute force, on hand-made gradients.

Tolerances: MGDA's min norm and CAGrad's objective within 1e-5 of the scale ‖g_i‖ (resp.
‖g_0‖·‖g_i‖) of a brute-force solve (a 1/300 simplex grid polished by SLSQP, and SLSQP from
many starts); PCGrad exactly one of the (T−1)! projection orders per task, the one its seed draws.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize


def simplex_grid(count: int, steps: int = 300) -> np.ndarray:
    """All points of the simplex with coordinates in multiples of 1/steps (count ≤ 3)."""
    points = [p for p in itertools.product(range(steps + 1), repeat=count - 1) if sum(p) <= steps]
    grid = np.array([[*p, steps - sum(p)] for p in points], "float64")
    return grid / steps


def brute_force_minimum(objective, count: int) -> float:
    """min over the simplex: the grid (3 tasks), then SLSQP from its best point and 20 others.

    `objective` takes one point or a stack of points (the grid, evaluated at once).
    """
    rng = np.random.default_rng(0)
    starts = [np.full(count, 1.0 / count), *np.eye(count), *rng.dirichlet(np.ones(count), 20)]
    best = np.inf
    if count <= 3:
        grid = simplex_grid(count)
        values = objective(grid)
        best = values.min()
        starts.append(grid[values.argmin()])
    for start in starts:
        found = minimize(objective, start, method="SLSQP", bounds=[(0.0, 1.0)] * count,
                         constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0}],
                         options={"ftol": 1e-15, "maxiter": 500})
        w = np.clip(found.x, 0.0, None)
        best = min(best, objective(w / w.sum()))
    return best


def hard_cases(count: int, seed: int) -> list[np.ndarray]:
    """Gradient sets of `count` tasks: random with unequal norms, fewer dimensions than tasks,
    nearly parallel rows, one row a multiple of another, all pairs conflicting."""
    rng = np.random.default_rng(seed)
    cases = [rng.normal(size=(count, 6)) * rng.uniform(0.05, 20, size=(count, 1)) for _ in range(4)]
    cases.append(rng.normal(size=(count, count - 1)))
    base = rng.normal(size=5)
    cases.append(base + 0.01 * rng.normal(size=(count, 5)))
    multiple = rng.normal(size=(count, 4))
    multiple[1] = 3.0 * multiple[0]
    cases.append(multiple)
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + 0.1
    cases.append(np.stack([np.cos(angles), np.sin(angles), 0.1 * rng.normal(size=count)], axis=1))
    return [c.astype("float32") for c in cases]


@pytest.mark.parametrize("count", [3, 4, 5])
def test_mgda_min_norm_matches_brute_force(count):
    import tensorflow as tf

    from mtl_runner.weighting.mgda import min_norm_weights

    for grads in hard_cases(count, seed=count):
        g = grads.astype("float64")
        gram = g @ g.T
        alpha = min_norm_weights(tf.constant(grads)).numpy().astype("float64")
        assert alpha.sum() == pytest.approx(1.0, abs=1e-6) and (alpha >= 0).all()
        found = np.sqrt(max(alpha @ gram @ alpha, 0.0))
        best = np.sqrt(max(brute_force_minimum(
            lambda a: np.einsum("...i,ij,...j->...", a, gram, a), count), 0.0))
        scale = np.sqrt(gram.diagonal().max())
        assert found <= best + 1e-5 * scale, (found, best, scale)


@pytest.mark.parametrize("count", [3, 4])
@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_solves_its_objective_like_brute_force(count, c):
    import tensorflow as tf

    from mtl_runner.weighting.cagrad import cagrad_coefficients

    for grads in hard_cases(count, seed=10 + count):
        g = grads.astype("float64")
        g0 = g.mean(axis=0)
        root_phi = c * np.linalg.norm(g0)

        def objective(w):  # g_wᵀ g_0 + √φ ‖g_w‖, for one w or a stack
            gw = w @ g
            return gw @ g0 + root_phi * np.linalg.norm(gw, axis=-1)

        coefficients = cagrad_coefficients(tf.constant(grads), c).numpy().astype("float64")
        # coefficients = (1/T + λ w) / (1 + c²): recover w on the simplex and λ = √φ / ‖g_w‖
        scaled = coefficients * (1 + c * c) - 1.0 / count
        assert (scaled >= -1e-6).all()
        w = scaled / scaled.sum()
        scale = np.linalg.norm(g0) * np.linalg.norm(g, axis=1).mean()
        assert objective(w) <= brute_force_minimum(objective, count) + 1e-5 * scale
        if np.linalg.norm(w @ g) > 1e-3 * np.linalg.norm(g, axis=1).max():
            assert scaled.sum() == pytest.approx(root_phi / np.linalg.norm(w @ g), rel=1e-3)


def pcgrad_task(grads, i, order) -> np.ndarray:
    g = grads[i].astype("float64")
    for j in order:
        other = grads[j].astype("float64")
        if g @ other < 0:
            g = g - (g @ other) / (other @ other) * other
    return g


@pytest.mark.parametrize("count", [3, 4])
def test_pcgrad_with_conflicting_tasks_follows_its_seeded_random_order(count):
    import tensorflow as tf

    from mtl_runner.weighting.pcgrad import project_conflicting

    rng = np.random.default_rng(count)
    while True:  # the first random set in which every pair of tasks conflicts
        grads = (rng.normal(size=(count, 3)) * rng.uniform(0.5, 3, (count, 1))).astype("float32")
        if (grads @ grads.T)[np.triu_indices(count, 1)].max() < 0:
            break
    seen = {i: set() for i in range(count)}
    for seed, step in itertools.product(range(4), range(4)):
        projected = project_conflicting(tf.constant(grads), seed, step).numpy()
        for i in range(count):
            others = [j for j in range(count) if j != i]
            draw = tf.random.stateless_uniform([count - 1], seed=tf.constant([seed + i, step],
                                                                                tf.int64)).numpy()
            order = [others[k] for k in np.argsort(draw)]
            np.testing.assert_allclose(projected[i], pcgrad_task(grads, i, order), atol=1e-5)
            seen[i].add(tuple(order))
    # the order is random: more than one order turns up for every task, and for some task the
    # order changes its projected gradient (else the checks above could not tell orders apart)
    assert all(len(seen[i]) > 1 for i in range(count))
    assert any(len({tuple(np.round(pcgrad_task(grads, i, o), 4)) for o in seen[i]}) > 1
               for i in range(count))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.5, 3.0])
def test_gradnorm_weight_gradient_with_moved_losses(alpha):
    import tensorflow as tf

    from mtl_runner.weighting.gradnorm import gradnorm_weight_gradient

    w = np.array([1.2, 0.8, 1.0])
    norms = np.array([2.0, 1.0, 1.5])
    initial = np.array([2.0, 1.0, 1.0])
    losses = np.array([0.5, 0.9, 1.2])  # L̃ = (0.25, 0.9, 1.2): task 1 trained fastest
    gradient, objective = gradnorm_weight_gradient(
        tf.constant(w, tf.float32), tf.constant(norms, tf.float32),
        tf.constant(losses, tf.float32), tf.constant(initial, tf.float32), alpha)
    g = w * norms
    ratio = losses / initial
    target = g.mean() * (ratio / ratio.mean()) ** alpha
    np.testing.assert_allclose(objective.numpy(), np.abs(g - target).sum(), rtol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), np.sign(g - target) * norms, rtol=1e-5)
