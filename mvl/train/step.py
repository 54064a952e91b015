"""THE train_step: masks from the step's rng, the enabled objectives, one optax update.

Every method is a config of this one function: Mask (mvl/mask) -> Encoder passes
(mvl/train/forward.py over the model) -> each enabled objective's Head and Target
(mvl/objectives, mvl/targets) -> their weighted sum. `make_train_step` closes over the
static parts and returns a pure `(state, batch) -> (state, metrics)`.

With `optim.microbatches = k > 1` the step draws the masks for the whole batch, then
runs the forward and backward passes on k slices in a `lax.scan` and averages their
gradients, so activations are held for one slice at a time. Losses that average over
examples or over a fixed count of hidden patches per example (MAE, MIM with exact
ratios) give the same update as one pass; losses that normalise by a count that
varies between slices (MLM's masked tokens) are averaged per slice, and contrastive
losses (ITC, SigLIP, ITM's negatives) see only their slice's examples as negatives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mvl import mask, objectives, targets
from mvl.data.bad_sample import SKIP_KINDS
from mvl.objectives import stages
from mvl.train import ema
from mvl.train.forward import Forward
from mvl.train.state import TrainState


def step_rngs(state: TrainState):
    """(mask rng, objective rng) for this step; resumed runs repeat them exactly."""
    return jax.random.split(jax.random.fold_in(state.rng, state.step))


def make_masks(cfg, batch, mask_rng, model):
    """The step's masks, with the tokenizer's ids the model carries."""
    return mask.make_masks(cfg, batch, mask_rng, model.vocab_size, model.special)


def teacher_features_fn(teacher):
    """`teacher` (module, params) or None -> images -> its patch features, or None."""
    if teacher is None:
        return None
    module, params = teacher
    return lambda images: targets.teacher_patch_features(module, params, images)


def compute_losses(model, cfg, params, batch, mask_rng, objective_rng, teacher=None):
    """Runs the enabled objectives; returns (weighted total, metrics dict).

    `teacher` is (module, params) of a teacher tower, or None.
    """
    masks = make_masks(cfg, batch, mask_rng, model)
    return losses_with_masks(model, cfg, params, batch, masks, objective_rng, teacher)


def losses_with_masks(
    model, cfg, params, batch, masks, objective_rng, teacher=None, train=False, step=None
):
    forward = Forward(
        model, params, batch, masks, objective_rng, teacher_features_fn(teacher), train=train
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
        teacher = None if teacher_model is None else (teacher_model, state.teacher)
        masks = make_masks(cfg, batch, mask_rng, model)

        def grads_and_metrics(params, batch, masks, rng):
            def loss_fn(params):
                return losses_with_masks(
                    model, cfg, params, batch, masks, rng, teacher, train=True, step=state.step
                )

            (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            return grads, metrics

        grads, metrics = accumulate(
            grads_and_metrics, state.params, batch, masks, objective_rng, cfg.optim.microbatches
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
        new_state, metrics["skipped"] = skip_if_not_finite(state, new_state, metrics)
        return new_state, jax.tree.map(jnp.asarray, metrics)

    return train_step


def skip_if_not_finite(state: TrainState, new_state: TrainState, metrics: dict):
    """(state to keep, skipped 0/1): a non-finite loss or gradient norm keeps the old
    parameters, optimizer state and teacher (the step counter still moves on, so the
    next step draws new masks); the loop counts skips and halts after too many in a row."""
    finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
    kept = new_state.replace(params=state.params, opt_state=state.opt_state, teacher=state.teacher)
    chosen = jax.tree.map(lambda new, old: jnp.where(finite, new, old), new_state, kept)
    return chosen, 1.0 - finite.astype(jnp.float32)


def split_microbatches(tree, count: int):
    """[B, ...] leaves -> [count, B / count, ...]; slice i takes rows i, i + count, ...

    Interleaving (rather than contiguous blocks) keeps every slice spread over all
    devices of a batch-sharded array, so each scan iteration uses the whole mesh.
    """

    def split(x):
        if x.shape[0] % count:
            raise ValueError(
                f"batch of {x.shape[0]} rows is not divisible by optim.microbatches={count}"
            )
        return jnp.swapaxes(x.reshape((x.shape[0] // count, count) + x.shape[1:]), 0, 1)

    return jax.tree.map(split, tree)


def accumulate(grads_and_metrics, params, batch, masks, rng, count: int):
    """`grads_and_metrics` over `count` microbatches, averaged (count 1: one plain call)."""
    if count == 1:
        return grads_and_metrics(params, batch, masks, rng)
    micro = split_microbatches((batch, masks), count)

    def body(grad_sum, inputs):
        index, (micro_batch, micro_masks) = inputs
        grads, metrics = grads_and_metrics(
            params, micro_batch, micro_masks, jax.random.fold_in(rng, index)
        )
        return jax.tree.map(jnp.add, grad_sum, grads), metrics

    zeros = jax.tree.map(jnp.zeros_like, params)
    grad_sum, metrics = jax.lax.scan(body, zeros, (jnp.arange(count), micro))
    grads = jax.tree.map(lambda g: g / count, grad_sum)
    return grads, jax.tree.map(lambda m: m.mean(0), metrics)
