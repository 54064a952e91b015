"""The train state: everything a step reads and writes, and nothing else.

Its shapes and shardings are built in one place (`abstract_state`) for both a real run
(mvl.main: `initial_state` then fills it with parameters) and an ahead-of-time compile
for a topology this machine does not have (mvl.compile: nothing is ever allocated).
"""

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
    # The teacher's own head state beside its tower, never in the optimizer: MaskCLIP's
    # EMA codebook and running centre (mvl/objectives/distill.py), or None.
    teacher_head: Any = None


def init_params(model, cfg, rng):
    """The model's parameters: exactly the parts the enabled objectives use.

    Runs every enabled objective's loss once on a dummy batch inside `Module.init`;
    Flax linen creates a submodule's parameters on its first call, so the parts no
    objective calls (another method's heads, an unused encoder) get none.
    """
    import jax.numpy as jnp

    from mvl import mask
    from mvl.train.forward import Forward
    from mvl.train.step import run_objectives

    batch = {
        "image": jnp.zeros((2, cfg.data.image_size, cfg.data.image_size, 3), jnp.float32),
        "text": jnp.zeros((2, cfg.data.max_text_len), jnp.int32),
    }
    masks = mask.make_masks(cfg, batch, jax.random.PRNGKey(0), model.vocab_size, model.special)
    patches = mask.grid_of(cfg) ** 2
    # Only a config with a teacher has teacher.image (its width is the features' width).
    width = cfg.teacher.image.width if cfg.teacher.kind != "none" else 1
    teacher_features = jnp.zeros((2, patches, width), jnp.float32)

    def through_objectives(module, batch, masks):
        forward = Forward(
            module, None, batch, masks, jax.random.PRNGKey(0), lambda _: teacher_features
        )
        run_objectives(forward, cfg)

    return model.init(rng, batch, masks, method=through_objectives)["params"]


def param_parts(model, cfg) -> set[str]:
    """The model's top-level parts that get parameters under `cfg` (abstract: nothing
    is allocated), e.g. {"image", "text", "image_projection", ...}."""
    return set(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))


def _init_fn(model, optimizer, cfg, teacher=None):
    """rng -> the initial TrainState, parameters still in flax's partitioning boxes."""
    import jax.numpy as jnp

    images = jnp.zeros((1, cfg.data.image_size, cfg.data.image_size, 3), jnp.float32)

    from mvl.objectives.distill import initial_teacher_head

    def init(rng):
        params_rng, state_rng, teacher_rng = jax.random.split(rng, 3)
        params = init_params(model, cfg, params_rng)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=optimizer.init(params),
            rng=state_rng,
            teacher=None if teacher is None else teacher.init(teacher_rng, images)["params"],
            teacher_head=initial_teacher_head(cfg, params),
        )

    return init


def _run_key(cfg):
    return jax.random.PRNGKey(cfg.seed)


def abstract_state(model, optimizer, cfg, mesh, teacher=None):
    """(state of jax.ShapeDtypeStructs carrying their shardings, state shardings).

    Traced with `jax.eval_shape`: no parameter is created, so any model size and any
    mesh (an abstract TPU or GPU topology included) costs nothing here.
    """
    import flax.linen as nn

    from mvl.runtime import sharding

    boxed = jax.eval_shape(_init_fn(model, optimizer, cfg, teacher), _run_key(cfg))
    shardings = sharding.logical_shardings(boxed, mesh, sharding.rules(cfg.mesh))
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
        nn.unbox(boxed),
        shardings,
    )
    return abstract, shardings


def initial_state(model, optimizer, cfg, mesh, rng=None, teacher=None, shardings=None):
    """Builds the sharded initial state; returns (state, state shardings).

    Parameters are created directly on their devices (jit with out_shardings), so a
    model larger than one device's memory never materialises in one place. `rng`
    defaults to the config's seed; `shardings` to `abstract_state`'s.
    """
    import flax.linen as nn

    init = _init_fn(model, optimizer, cfg, teacher)
    if shardings is None:
        _, shardings = abstract_state(model, optimizer, cfg, mesh, teacher)
    rng = _run_key(cfg) if rng is None else rng
    state = jax.jit(lambda r: nn.unbox(init(r)), out_shardings=shardings)(rng)
    return state, shardings
