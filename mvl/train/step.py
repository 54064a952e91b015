"""THE train_step: masks from the step's rng, the enabled objectives, one optax update.

Every method is a config of this one function: Mask (mvl/mask) -> Encoder passes
(mvl/train/forward.py over the model) -> each enabled objective's Head and Target
(mvl/objectives, mvl/targets) -> their weighted sum. `make_train_step` closes over the
static parts and returns a pure `(state, batch) -> (state, metrics)`.

With `optim.microbatches = k > 1` the step draws the masks for the whole batch, then
computes the same gradient as one full-batch pass with the activations of one slice
at a time (mvl/train/grad_cache.py): batch-coupled objectives (ITC, SigLIP, ITM) run on
the full batch from cached encoder outputs, so they keep every negative, and
per-example objectives are weighted so their slices sum to the full-batch loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mvl import mask, objectives, targets
from mvl.data.bad_sample import SKIP_KINDS
from mvl.objectives import stages
from mvl.train import ema, grad_cache
from mvl.train.forward import Forward
from mvl.train.state import TrainState


def step_rngs(state: TrainState):
    """(mask rng, objective rng) for this step; resumed runs repeat them exactly."""
    return jax.random.split(jax.random.fold_in(state.rng, state.step))


def make_masks(cfg, batch, mask_rng, model):
    """The step's masks, with the tokenizer's ids the model carries."""
    return mask.make_masks(cfg, batch, mask_rng, model.vocab_size, model.special)


def teacher_features_fn(teacher):
    """`teacher` (module, params[, head]) or None -> images -> its patch features, or None."""
    if teacher is None:
        return None
    module, params = teacher[:2]
    return lambda images: targets.teacher_patch_features(module, params, images)


def compute_losses(model, cfg, params, batch, mask_rng, objective_rng, teacher=None):
    """Runs the enabled objectives; returns (weighted total, metrics dict).

    `teacher` is (module, params) of a teacher tower, or None; a third entry, the
    state's teacher head (mvl/objectives/distill.py), may follow.
    """
    masks = make_masks(cfg, batch, mask_rng, model)
    return losses_with_masks(model, cfg, params, batch, masks, objective_rng, teacher)


def losses_with_masks(
    model, cfg, params, batch, masks, objective_rng, teacher=None, train=False, step=None
):
    head = teacher[2] if teacher is not None and len(teacher) > 2 else None
    forward = Forward(
        model,
        params,
        batch,
        masks,
        objective_rng,
        teacher_features_fn(teacher),
        train=train,
        teacher_head=head,
    )
    return run_objectives(forward, cfg, step)


def run_objectives(forward, cfg, step=None):
    """(weighted total, metrics) of every enabled objective on one `Forward`; `step` (the
    state's step counter; None: evaluation) switches staged objectives on
    (mvl/objectives/stages.py)."""
    total, metrics = 0.0, {}
    for name, weight in objectives.enabled(cfg.objectives).items():
        start = stages.start_step(cfg, name)
        objective = objectives.get(name)
        loss, extra = stages.staged_loss(forward, objective, cfg.objectives[name], start, step)
        total = total + weight * loss
        metrics[f"{name}/loss"] = loss
        metrics.update({f"{name}/{key}": value for key, value in extra.items()})
        if start > 0 and step is not None:
            metrics[f"stage/{name}"] = (step >= start).astype(jnp.float32)
    metrics["loss"] = total
    return total, metrics


def make_train_step(
    model,
    cfg,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    teacher_model=None,
):
    """`teacher_model` applies `state.teacher`; only `state.params` are differentiated."""

    def train_step(state: TrainState, batch):
        mask_rng, objective_rng = step_rngs(state)
        teacher = (
            None if teacher_model is None else (teacher_model, state.teacher, state.teacher_head)
        )
        masks = make_masks(cfg, batch, mask_rng, model)

        grads, metrics = step_gradients(
            model, cfg, state.params, batch, masks, objective_rng, teacher, step=state.step
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        metrics["learning_rate"] = schedule(state.step)
        if "skipped_before" in batch:  # broken samples the input pipeline left out
            metrics["data/skipped_samples"] = jnp.sum(batch["skipped_before"]).astype(jnp.float32)
        if "skipped_kinds" in batch:  # the same by reason (mvl/data/bad_sample.py)
            by_kind = jnp.sum(batch["skipped_kinds"], axis=0).astype(jnp.float32)
            for i, kind in enumerate(SKIP_KINDS):
                metrics[f"data/skipped/{kind}"] = by_kind[i]
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        if cfg.teacher.kind == "ema":  # the teacher follows the student's image tower
            m = ema.momentum(state.step, cfg.teacher.momentum, cfg.total_steps)
            new_state = new_state.replace(teacher=ema.ema_update(state.teacher, params["image"], m))
            metrics["teacher/momentum"] = m
        new_state = ema.update_teacher_head(cfg, state, new_state, metrics)
        new_state, metrics["skipped"] = skip_if_not_finite(state, new_state, metrics)
        return new_state, jax.tree.map(jnp.asarray, metrics)

    return train_step


def skip_if_not_finite(state: TrainState, new_state: TrainState, metrics: dict):
    """(state to keep, skipped 0/1): a non-finite loss or gradient norm keeps the old
    parameters, optimizer state and teacher (the step counter still moves on, so the
    next step draws new masks); the loop counts skips and halts after too many in a row."""
    finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
    kept = new_state.replace(
        params=state.params,
        opt_state=state.opt_state,
        teacher=state.teacher,
        teacher_head=state.teacher_head,
    )
    chosen = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
    return chosen, 1.0 - finite.astype(jnp.float32)


def step_gradients(model, cfg, params, batch, masks, rng, teacher=None, step=None):
    """(gradient of the weighted total w.r.t. `params`, metrics) of one step; with
    `cfg.optim.microbatches` > 1 the same gradient, accumulated over that many slices.
    `step`: the state's step counter, which switches staged objectives on (None: all on)."""

    teacher_fn = teacher_features_fn(teacher)
    head = teacher[2] if teacher is not None and len(teacher) > 2 else None

    def make_forward(params, batch, masks, rng, cache=None):
        return Forward(
            model, params, batch, masks, rng, teacher_fn, train=True, teacher_head=head, cache=cache
        )

    count = cfg.optim.microbatches
    if count > 1:
        return grad_cache.accumulate_exact(
            make_forward, cfg, params, batch, masks, rng, count, step=step
        )

    def loss_fn(params):
        return run_objectives(make_forward(params, batch, masks, rng), cfg, step)

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return grads, metrics
