"""Kind "block": aligned `block_size` x `block_size` squares of patches (MaskVLM)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.mask.random_patches import random_patch_mask
from mvl.mask.registry import register_image_kind


def block_patch_mask(rng, batch_size: int, grid: int, ratio: float, block: int) -> jax.Array:
    """Hides round(ratio * blocks) aligned `block` x `block` squares of patches.

    MaskVLM masks 60% of the image in 32x32-pixel blocks: with 16-pixel patches that is
    block=2. The grid must be divisible by the block so every block is whole (the
    config rule below; called directly, a bad pair still fails here, before tracing).
    """
    if grid % block:
        raise ValueError(f"patch grid {grid} is not divisible by mask block size {block}")
    blocks_per_side = grid // block
    hidden_blocks = random_patch_mask(rng, batch_size, blocks_per_side**2, ratio)
    hidden_blocks = hidden_blocks.reshape(batch_size, blocks_per_side, 1, blocks_per_side, 1)
    hidden = jnp.broadcast_to(
        hidden_blocks, (batch_size, blocks_per_side, block, blocks_per_side, block)
    )
    return hidden.reshape(batch_size, grid * grid)


def _hidden_count(cfg, grid: int) -> int:
    return int(round(cfg.ratio * (grid // cfg.block_size) ** 2)) * cfg.block_size**2


def _validate(cfg, grid: int):
    if grid % cfg.block_size:
        raise ValueError(
            f"config mask.image.block_size={cfg.block_size!r}: must divide the patch grid {grid}"
        )


@register_image_kind("block", hidden_count=_hidden_count, validate=_validate)
def block_kind(rng, cfg, batch_size: int, grid: int, ratio):
    return block_patch_mask(rng, batch_size, grid, cfg.ratio, cfg.block_size)
