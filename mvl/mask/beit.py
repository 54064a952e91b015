"""Kind "beit": BEiT's block-wise masking (random rectangles), exact count per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.mask.ranks import hide_lowest
from mvl.mask.registry import register_image_kind


def beit_block_mask(
    rng,
    batch_size: int,
    grid: int,
    ratio: float,
    min_patches: int = 16,
    min_aspect: float = 0.3,
    attempts: int = 0,
) -> jax.Array:
    """BEiT's block-wise masking, hiding exactly round(ratio * N) patches per example.

    Rectangles of random area (at least `min_patches`, at most what is still to hide)
    and aspect ratio (log-uniform in [min_aspect, 1 / min_aspect]) are placed at random
    positions; one is kept when it hides at least one new patch without overshooting.
    BEiT loops until the count is reached; inside jit the loop runs a fixed number of
    `attempts` (default 4 per patch to hide) and any shortfall, rare, is made up with
    random single patches so the count stays exact.
    """
    count = int(round(ratio * grid * grid))
    attempts = attempts or 4 * max(count, 1)
    rows, cols = jnp.divmod(jnp.arange(grid * grid), grid)

    def propose(hidden, key):
        area_key, aspect_key, top_key, left_key = jax.random.split(key, 4)
        remaining = count - hidden.sum()
        area = jax.random.uniform(
            area_key, minval=min_patches, maxval=jnp.maximum(min_patches, remaining)
        )
        log_aspect = jax.random.uniform(
            aspect_key, minval=jnp.log(min_aspect), maxval=-jnp.log(min_aspect)
        )
        height = jnp.round(jnp.sqrt(area * jnp.exp(log_aspect))).astype(jnp.int32)
        width = jnp.round(jnp.sqrt(area / jnp.exp(log_aspect))).astype(jnp.int32)
        top = jax.random.randint(top_key, (), 0, jnp.maximum(grid - height + 1, 1))
        left = jax.random.randint(left_key, (), 0, jnp.maximum(grid - width + 1, 1))
        rect = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
        new = (rect & ~hidden).sum()
        fits = (height < grid) & (width < grid) & (new > 0) & (new <= remaining)
        return jnp.where(fits, hidden | rect, hidden), None

    def one_example(key):
        block_key, fill_key = jax.random.split(key)
        hidden, _ = jax.lax.scan(
            propose, jnp.zeros(grid * grid, bool), jax.random.split(block_key, attempts)
        )
        shortfall = count - hidden.sum()
        scores = jnp.where(hidden, 2.0, jax.random.uniform(fill_key, hidden.shape))
        return hidden | hide_lowest(scores[None], shortfall[None])[0]

    return jax.vmap(one_example)(jax.random.split(rng, batch_size))


@register_image_kind("beit", hidden_count=lambda cfg, grid: int(round(cfg.ratio * grid * grid)))
def beit_kind(rng, cfg, batch_size: int, grid: int, ratio):
    return beit_block_mask(
        rng, batch_size, grid, cfg.ratio, cfg.min_block_patches, cfg.block_aspect
    )
