"""The CLIP paper's linear probe: L2-regularised multinomial logistic regression on
frozen features, fit with L-BFGS (optax), its L2 strength chosen by a sweep on a
validation split carved from the training rows, then refit on every training row.

The objective is mean cross-entropy + l2 / 2 * ||W||^2 (the bias is not penalised);
scikit-learn's C, which CLIP sweeps, is 1 / (l2 * n_train). CLIP swept 96 log-spaced
values over 1e-6..1e6 of C; the default grid here is coarser (`L2_GRID`) and a config
option. Features are standardised with the training rows' statistics (so one grid
suits every method's feature scale)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

L2_GRID = tuple(10.0**e for e in range(-6, 2))  # 1e-6 .. 1e1


def fit(x, y, num_classes: int, l2: float, max_steps: int = 1000, tol: float = 1e-5) -> dict:
    """{"w": [D, C], "b": [C]} minimising the objective above with L-BFGS (compiled once
    per shape: every strength of a sweep reuses it)."""
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    return _fit(x, y, jnp.float32(l2), jnp.float32(tol), num_classes, max_steps)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _fit(x, y, l2, tol, num_classes, max_steps):
    def objective(params):
        logits = x @ params["w"] + params["b"]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return ce + 0.5 * l2 * jnp.sum(params["w"] ** 2)

    params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros((num_classes,))}
    return _minimise(objective, params, max_steps, tol)


def _minimise(objective, params, max_steps, tol):
    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=objective
        )
        return optax.apply_updates(params, updates), state

    def unfinished(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        error = otu.tree_norm(otu.tree_get(state, "grad"))
        return (count == 0) | ((count < max_steps) & (error >= tol))

    params, _ = jax.lax.while_loop(unfinished, step, (params, solver.init(params)))
    return params


def accuracy(params, x, y) -> float:
    logits = np.asarray(jnp.asarray(x, jnp.float32) @ params["w"] + params["b"])
    return float((logits.argmax(1) == np.asarray(y)).mean())


def standardise(train: np.ndarray, *others: np.ndarray):
    mean, std = train.mean(0), train.std(0) + 1e-6
    return tuple((a - mean) / std for a in (train, *others))


def swept_linear_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    num_classes: int,
    l2_grid=L2_GRID,
    validation_fraction: float = 0.2,
    max_steps: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """{"top1": test accuracy, "l2": the chosen strength, "validation_top1": its score}."""
    train_x, train_y = np.asarray(train_x, np.float32), np.asarray(train_y)
    order = np.random.default_rng(seed).permutation(len(train_y))
    held = max(1, round(len(order) * validation_fraction))
    fit_rows, val_rows = order[held:], order[:held]
    fx, vx = standardise(train_x[fit_rows], train_x[val_rows])
    scores = [
        accuracy(fit(fx, train_y[fit_rows], num_classes, l2, max_steps), vx, train_y[val_rows])
        for l2 in l2_grid
    ]
    best = int(np.argmax(scores))  # the first (weakest) of equally good strengths
    all_x, test_x = standardise(train_x, np.asarray(test_x, np.float32))
    params = fit(all_x, train_y, num_classes, l2_grid[best], max_steps)
    return {
        "top1": accuracy(params, test_x, test_y),
        "l2": float(l2_grid[best]),
        "validation_top1": scores[best],
    }
