"""THE train_step: masks from the step's rng, the enabled objectives, one optax update.

Every method is a config of this one function: Mask (mvl/masking.py) -> Encoder and
Head passes (mvl/train/forward.py over the model) -> Target (mvl/targets.py) -> the
weighted objectives (mvl/objectives). `make_train_step` closes over the static parts
and returns a pure `(state, batch) -> (state, metrics)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mvl import masking, objectives
from mvl.train import ema
from mvl.train.forward import Forward
from mvl.train.state import TrainState


def step_rngs(state: TrainState):
    """(mask rng, objective rng) for this step; resumed runs repeat them exactly."""
    return jax.random.split(jax.random.fold_in(state.rng, state.step))


def compute_losses(
    model, cfg, params, batch, mask_rng, objective_rng, vocab_size: int, teacher=None
):
    """Runs the enabled objectives; returns (weighted total, metrics dict).

    `teacher` is (module, params) of a teacher tower, or None.
    """
    grid = cfg.model.image.image_size // cfg.model.image.patch_size
    masks = masking.make_masks(mask_rng, cfg.mask, batch, grid, vocab_size)
    forward = Forward(model, params, batch, masks, objective_rng, teacher)
    total, metrics = 0.0, {}
    for name, weight in objectives.enabled(cfg.objectives).items():
        loss, extra = objectives.get(name).fn(forward, cfg.objectives[name])
        total = total + weight * loss
        metrics[f"{name}/loss"] = loss
        metrics.update({f"{name}/{key}": value for key, value in extra.items()})
    metrics["loss"] = total
    return total, metrics


def make_train_step(
    model,
    cfg,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    vocab_size: int,
    teacher_model=None,
):
    """`teacher_model` applies `state.teacher`; only `state.params` are differentiated."""

    def train_step(state: TrainState, batch):
        mask_rng, objective_rng = step_rngs(state)
        teacher = None if teacher_model is None else (teacher_model, state.teacher)

        def loss_fn(params):
            return compute_losses(
                model, cfg, params, batch, mask_rng, objective_rng, vocab_size, teacher
            )

        (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        metrics["learning_rate"] = schedule(state.step)
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        if cfg.teacher.kind == "ema":  # the teacher follows the student's image tower
            m = ema.momentum(state.step, cfg.teacher.momentum, cfg.total_steps)
            new_state = new_state.replace(teacher=ema.ema_update(state.teacher, params["image"], m))
            metrics["teacher/momentum"] = m
        return new_state, jax.tree.map(jnp.asarray, metrics)

    return train_step
