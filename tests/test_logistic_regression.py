"""The swept L2 linear probe (mvl/evaluate/logistic_regression.py)."""

import numpy as np
import pytest

from mvl.evaluate import logistic_regression as lr


def clusters(n, classes, dim, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(classes, dim)) * 3
    labels = rng.integers(0, classes, n)
    return centres[labels] + spread * rng.normal(size=(n, dim)), labels


def test_the_fit_reaches_the_optimum_of_the_regularised_objective():
    """At the minimum the gradient is zero: X^T (softmax - onehot) / n + l2 W = 0."""
    x, y = clusters(120, 3, 5, seed=0, spread=2.0)
    l2 = 0.1
    params = lr.fit(x, y, 3, l2)
    logits = x @ np.asarray(params["w"]) + np.asarray(params["b"])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    residual = p - np.eye(3)[y]
    np.testing.assert_allclose(x.T @ residual / len(y) + l2 * np.asarray(params["w"]), 0, atol=1e-4)
    np.testing.assert_allclose(residual.mean(0), 0, atol=1e-4)


def test_the_sweep_separates_clusters_and_is_at_chance_on_noise():
    train_x, train_y = clusters(300, 4, 8, seed=1)
    test_x, test_y = clusters(200, 4, 8, seed=2)
    result = lr.swept_linear_probe(train_x, train_y, test_x, test_y, 4, max_steps=200)
    assert result["top1"] > 0.95 and result["l2"] in lr.L2_GRID
    rng = np.random.default_rng(3)
    noise = lr.swept_linear_probe(
        rng.normal(size=(300, 8)),
        rng.integers(0, 4, 300),
        rng.normal(size=(400, 8)),
        rng.integers(0, 4, 400),
        4,
        max_steps=200,
    )
    assert noise["top1"] == pytest.approx(0.25, abs=0.1)


def test_heavy_noise_features_pick_a_stronger_l2_than_clean_ones():
    """Many useless dimensions and few rows: the sweep must regularise more."""
    rng = np.random.default_rng(4)
    x, y = clusters(60, 2, 2, seed=5)
    noisy = np.concatenate([x, rng.normal(size=(60, 200)) * 3], 1)
    clean = lr.swept_linear_probe(x[:40], y[:40], x[40:], y[40:], 2, max_steps=200)
    heavy = lr.swept_linear_probe(noisy[:40], y[:40], noisy[40:], y[40:], 2, max_steps=200)
    assert heavy["l2"] >= clean["l2"]
