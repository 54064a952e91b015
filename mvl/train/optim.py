"""The optax optimizer from the config: AdamW, warmup + cosine, clipping, decay mask."""

from __future__ import annotations

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


def decay_mask(params):
    """Weight decay on dense / conv kernels only.

    Spared: biases, LayerNorm scales, embeddings (token tables, positions, [CLS] and
    mask tokens) and the contrastive temperature, which all live outside `kernel` leaves.
    """

    def is_kernel(path, _):
        return getattr(path[-1], "key", None) == "kernel"

    return jax.tree_util.tree_map_with_path(is_kernel, params)


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
            mask=decay_mask,
        ),
    )
