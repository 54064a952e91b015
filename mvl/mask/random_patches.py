"""Kind "random": round(ratio * N) patches per example, uniformly at random."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.mask.ranks import hide_lowest
from mvl.mask.registry import register_image_kind


def random_patch_mask(rng, batch_size: int, num_patches: int, ratio) -> jax.Array:
    """Hides round(ratio * N) patches per example, uniformly at random.

    `ratio` is one float, or a [B] array of per-example ratios (modality-aware masking).
    """
    if isinstance(ratio, (int, float)):
        count = int(round(ratio * num_patches))
    else:
        count = jnp.round(ratio * num_patches).astype(jnp.int32)
    return hide_lowest(jax.random.uniform(rng, (batch_size, num_patches)), count)


@register_image_kind("random", hidden_count=lambda cfg, grid: int(round(cfg.ratio * grid * grid)))
def random_kind(rng, cfg, batch_size: int, grid: int, ratio):
    return random_patch_mask(rng, batch_size, grid * grid, ratio)
