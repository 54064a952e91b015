"""The train state: everything a step reads and writes, and nothing else."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array  # the run's base key; a step uses fold_in(rng, step)
    teacher: Any = None  # a teacher image tower's params: never in the optimizer (MVP)


def initial_state(model, optimizer, cfg, mesh, rng, teacher=None):
    """Builds the sharded initial state; returns (state, state shardings).

    Parameters are created directly on their devices (jit with out_shardings), so a
    model larger than one device's memory never materialises in one place.
    """
    import flax.linen as nn
    import jax.numpy as jnp

    from mvl import sharding

    images = jnp.zeros((1, cfg.data.image_size, cfg.data.image_size, 3), jnp.float32)
    ids = jnp.zeros((1, cfg.data.max_text_len), jnp.int32)

    def init(rng):
        params_rng, state_rng, teacher_rng = jax.random.split(rng, 3)
        params = model.init(params_rng, images, ids)["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optimizer.init(params),
            rng=state_rng,
            teacher=None if teacher is None else teacher.init(teacher_rng, images)["params"],
        )

    boxed = jax.eval_shape(init, rng)
    shardings = sharding.logical_shardings(boxed, mesh)
    state = jax.jit(lambda r: nn.unbox(init(r)), out_shardings=shardings)(rng)
    return state, shardings
