"""The optax optimizer from the config: AdamW, warmup + cosine, clipping, decay mask."""

from __future__ import annotations

import functools

import jax
import optax


def learning_rate_schedule(cfg, total_steps: int) -> optax.Schedule:
    warmup = min(cfg.warmup_steps, total_steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=cfg.lr * cfg.end_lr_factor,
    )


# What weight decay applies to (optim.weight_decay_applies_to; see mvl/config/base.py).
DECAY_RULES = ("kernels", "all_but_gains_and_biases")


def decay_mask(params, rule: str = "kernels"):
    """The optax mask (a bool per parameter) of the parameters `rule` decays.

    "kernels": dense / conv kernels only. Spared: biases, LayerNorm scales, embeddings
    (token tables, positions, [CLS] and mask tokens) and the contrastive temperature,
    which all live outside `kernel` leaves.
    "all_but_gains_and_biases": every parameter with 2 or more dimensions; spared are
    the 1-D and scalar ones (biases, LayerNorm scales, temperature and sigmoid bias).
    """
    if rule not in DECAY_RULES:
        raise ValueError(
            f"config optim.weight_decay_applies_to={rule!r} is not one of {', '.join(DECAY_RULES)}"
        )

    def is_kernel(path, _):
        return getattr(path[-1], "key", None) == "kernel"

    def is_matrix(_, leaf):
        return len(getattr(leaf, "shape", ())) >= 2

    decayed = is_kernel if rule == "kernels" else is_matrix
    return jax.tree_util.tree_map_with_path(decayed, params)


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(cfg, total_steps)
    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip_norm) if cfg.grad_clip_norm else optax.identity(),
        optax.adamw(
            schedule,
            b1=cfg.b1,
            b2=cfg.b2,
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            # .get: configs saved before the key existed decayed kernels only
            mask=functools.partial(decay_mask, rule=cfg.get("weight_decay_applies_to", "kernels")),
        ),
    )
