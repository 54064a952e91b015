"""Exact gradient accumulation for batch-coupled objectives (the GradCache idea).

ITC, SigLIP and ITM score every example against every other example of the batch, so
the plain "average the gradients of k slices" changes their negatives. Here the step is
split at the encoders' outputs (the image, text or single-stream tower tokens a coupled
objective reads, `Forward.ENCODER_PASSES`):

  1. no gradient, one slice at a time (a `lax.scan`): the towers' outputs that the
     coupled objectives read, stacked back into the full batch;
  2. the coupled objectives on the full batch, reading those cached outputs: their
     loss, metrics, gradient w.r.t. their head parameters (projections, logit scale,
     fusion encoder, ITM head) and the cotangent w.r.t. every cached output;
  3. one slice at a time again (a `lax.scan`): the towers are recomputed under `jax.vjp`
     and the slice's cotangent is pulled back into the tower parameters, together with
     the slice's per-example objectives (MLM, MIM/MAE, features, distill, RECON).

What stays full-batch: step 2, i.e. the embedding heads, and for ITM its hard-negative
mining and its fusion passes over the 3B (matched + 2 negatives) pairs; for MLIM's
`stream_itm` (whose pairs mix two examples' inputs) its whole single-stream pass. What is
microbatched: every tower pass, and everything the per-example objectives compute.

Per-example objectives are weighted so the sum over slices is the full-batch loss: a
loss that averages over examples gets 1/k per slice; a loss normalised by a count (the
objective's registered `count`, e.g. MLM's scored tokens, MIM's hidden patches) gets
max(slice count, 1) / max(batch count, 1), i.e. every slice divides by the full batch's
count. Every slice uses the same rng in both of its passes (fold_in(step rng, slice)),
so stochastic depth recomputes the cached outputs exactly; the coupled objectives use the
step's rng, as one full-batch pass does (ITM draws the same negatives for any k).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl import objectives
from mvl.objectives import stages


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


def merge_microbatches(tree):
    """The inverse of `split_microbatches`: [count, B / count, ...] -> [B, ...]."""

    def merge(x):
        return jnp.swapaxes(x, 0, 1).reshape((x.shape[0] * x.shape[1],) + x.shape[2:])

    return jax.tree.map(merge, tree)


def split_by_coupling(cfg) -> tuple[dict, dict]:
    """({name: weight} of the enabled batch-coupled objectives, of the per-example ones)."""
    coupled, per_example = {}, {}
    for name, weight in objectives.enabled(cfg.objectives).items():
        (coupled if objectives.get(name).coupled else per_example)[name] = weight
    return coupled, per_example


def run_named(forward, cfg, weights: dict, shares: dict | None = None, step=None):
    """(sum of weight * share * loss, metrics) of the objectives in `weights` on `forward`;
    `shares` {name: this slice's share of the full-batch loss} (default 1); `step` the
    state's step counter for staged objectives (mvl/objectives/stages.py; None: all on)."""
    total, metrics = 0.0, {}
    for name, weight in weights.items():
        start = stages.start_step(cfg, name)
        objective = objectives.get(name)
        loss, extra = stages.staged_loss(forward, objective, cfg.objectives[name], start, step)
        share = 1.0 if shares is None else shares[name]
        total = total + weight * share * loss
        metrics[f"{name}/loss"] = share * loss
        metrics.update({f"{name}/{key}": value for key, value in extra.items()})
        if start > 0 and step is not None:
            metrics[f"stage/{name}"] = (step >= start).astype(jnp.float32)
    return total, metrics


def slice_shares(cfg, names, micro_batch, micro_masks, batch, masks, count: int) -> dict:
    """{name: weight of one slice's loss} so that the k weighted slice losses sum to the
    full-batch loss (see the module docstring)."""
    shares = {}
    for name in names:
        count_of = objectives.get(name).count
        if count_of is None:
            shares[name] = 1.0 / count
            continue
        section = cfg.objectives[name]
        whole = jnp.maximum(count_of(batch, masks, section).astype(jnp.float32), 1.0)
        part = jnp.maximum(count_of(micro_batch, micro_masks, section).astype(jnp.float32), 1.0)
        shares[name] = part / whole
    return shares


def accumulate_exact(make_forward, cfg, params, batch, masks, rng, count: int, step=None):
    """(gradient, metrics) of the enabled objectives over `count` slices, equal to one
    full-batch pass; `make_forward(params, batch, masks, rng, cache=None)` -> Forward.
    `step` switches staged objectives on in passes 2 and 3; pass 1 runs them all, so
    the tower outputs a staged coupled objective reads are cached either way."""
    coupled, per_example = split_by_coupling(cfg)
    micro = split_microbatches((batch, masks), count)
    indices = jnp.arange(count)

    def slice_forward(p, index, micro_batch, micro_masks):
        return make_forward(p, micro_batch, micro_masks, jax.random.fold_in(rng, index))

    # 1. The towers' outputs the coupled objectives read, without gradient. Their losses
    # on the slice are never used, so XLA removes everything but the tower passes.
    def cache_slice(_, inputs):
        index, (micro_batch, micro_masks) = inputs
        forward = slice_forward(jax.lax.stop_gradient(params), index, micro_batch, micro_masks)
        run_named(forward, cfg, coupled)
        return None, forward.encoder_outputs()

    _, cached = jax.lax.scan(cache_slice, None, (indices, micro))
    cached = merge_microbatches(cached)

    # 2. The coupled objectives on the whole batch's cached outputs.
    def coupled_loss(p, outputs):
        forward = make_forward(p, batch, masks, rng, cache=outputs)
        return run_named(forward, cfg, coupled, step=step)

    (coupled_total, metrics), (grads, cotangents) = jax.value_and_grad(
        coupled_loss, argnums=(0, 1), has_aux=True
    )(params, cached)

    # 3. Per slice: recompute the towers, pull back their cotangents, add the
    # per-example objectives.
    def slice_grads(grad_sum, inputs):
        index, (micro_batch, micro_masks), cotangent = inputs
        shares = slice_shares(cfg, per_example, micro_batch, micro_masks, batch, masks, count)

        def outputs(p):
            forward = slice_forward(p, index, micro_batch, micro_masks)
            total, slice_metrics = run_named(forward, cfg, per_example, shares, step)
            total = jnp.asarray(total, jnp.float32)
            recomputed = {key: forward.encoder_output(key) for key in cotangent}
            return (total, recomputed), (total, slice_metrics)

        _, pull_back, (total, slice_metrics) = jax.vjp(outputs, params, has_aux=True)
        (slice_grad,) = pull_back((jnp.ones((), jnp.float32), cotangent))
        return jax.tree.map(jnp.add, grad_sum, slice_grad), (total, slice_metrics)

    cotangents = split_microbatches(cotangents, count)
    grads, (totals, slice_metrics) = jax.lax.scan(slice_grads, grads, (indices, micro, cotangents))
    for key, values in slice_metrics.items():
        # losses were scaled by their slice's share: their sum is the full-batch loss
        metrics[key] = values.sum(0) if key.endswith("/loss") else values.mean(0)
    metrics["loss"] = coupled_total + totals.sum()
    return grads, metrics
