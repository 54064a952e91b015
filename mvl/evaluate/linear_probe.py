"""Linear probe: softmax regression on frozen features, trained with optax.

Features are standardised with the training rows' mean and standard deviation (MAE's
probe puts a parameter-free BatchNorm before the linear layer for the same reason:
feature scales differ wildly between methods). Full-batch AdamW, a fixed number of
steps: small held-out sets fit in memory, and a fixed budget keeps runs comparable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def linear_probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    steps: int = 300,
    lr: float = 0.1,
    weight_decay: float = 1e-4,
) -> float:
    """Accuracy on (test_x, test_y) of a linear classifier fit on (train_x, train_y)."""
    train_x, test_x = standardise(np.asarray(train_x, np.float32), np.asarray(test_x, np.float32))
    params = {
        "w": jnp.zeros((train_x.shape[1], num_classes)),
        "b": jnp.zeros((num_classes,)),
    }
    optimizer = optax.adamw(lr, weight_decay=weight_decay)

    def loss(params):
        logits = train_x @ params["w"] + params["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, train_y).mean()

    @jax.jit
    def fit(params):
        def step(carry, _):
            params, opt_state = carry
            grads = jax.grad(loss)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, steps)
        return params

    params = fit(params)
    predicted = np.argmax(np.asarray(test_x @ params["w"] + params["b"]), axis=1)
    return float((predicted == test_y).mean())
