"""Mask: which inputs a step hides, drawn from the step's rng inside jit.

Image masks are bool [B, N] over patches (True = hidden); text masking returns the
corrupted ids plus the positions the loss scores. Every function hides an exact count
per example, so ratios are exact up to rounding and tests can check them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.data import special_tokens


def _hide_lowest(scores: jax.Array, count: jax.Array | int) -> jax.Array:
    """True where a score ranks among the `count` lowest of its row."""
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    count = jnp.asarray(count)
    return ranks < (count[:, None] if count.ndim else count)


def random_patch_mask(rng, batch_size: int, num_patches: int, ratio: float) -> jax.Array:
    """Hides round(ratio * N) patches per example, uniformly at random."""
    count = int(round(ratio * num_patches))
    return _hide_lowest(jax.random.uniform(rng, (batch_size, num_patches)), count)


def block_patch_mask(rng, batch_size: int, grid: int, ratio: float, block: int) -> jax.Array:
    """Hides round(ratio * blocks) aligned `block` x `block` squares of patches.

    MaskVLM masks 60% of the image in 32x32-pixel blocks: with 16-pixel patches that is
    block=2. The grid must be divisible by the block so every block is whole.
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


def image_mask(rng, cfg, batch_size: int, grid: int) -> jax.Array | None:
    """Dispatches on `cfg.kind`: none | random | block."""
    if cfg.kind == "none":
        return None
    if cfg.kind == "random":
        return random_patch_mask(rng, batch_size, grid * grid, cfg.ratio)
    if cfg.kind == "block":
        return block_patch_mask(rng, batch_size, grid, cfg.ratio, cfg.block_size)
    raise ValueError(f"mask.image.kind={cfg.kind!r} is not one of none, random, block")


def hidden_count(cfg, grid: int) -> int:
    """How many patches `image_mask` hides per example (static, so dropping can slice)."""
    if cfg.kind == "random":
        return int(round(cfg.ratio * grid * grid))
    if cfg.kind == "block":
        return int(round(cfg.ratio * (grid // cfg.block_size) ** 2)) * cfg.block_size**2
    return 0


def visible_indices(hidden: jax.Array, num_hidden: int) -> jax.Array:
    """[B, N - num_hidden] indices of the visible patches, in ascending (raster) order.

    A stable sort puts False (visible) first and keeps their order, so an encoder that
    runs on these tokens only (MAE, FLIP) and a decoder that scatters them back see
    patches where they belong.
    """
    order = jnp.argsort(hidden, axis=1, stable=True)
    return order[:, : hidden.shape[1] - num_hidden]


def bert_text_mask(
    rng,
    ids: jax.Array,
    ratio: float,
    vocab_size: int,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
):
    """BERT masking: picks max(1, round(ratio * n)) of each row's n maskable tokens.

    Maskable means not pad, [CLS], [EOS] or [BOS]. Of the picked tokens, `mask_prob`
    become [MASK], `random_prob` a random ordinary token, the rest stay unchanged.
    Returns (corrupted ids, picked positions).
    """
    pick_rng, kind_rng, token_rng = jax.random.split(rng, 3)
    maskable = ~jnp.isin(
        ids,
        jnp.array([special_tokens.PAD, special_tokens.CLS, special_tokens.EOS, special_tokens.BOS]),
    )
    num_maskable = maskable.sum(-1)
    count = jnp.where(num_maskable > 0, jnp.maximum(1, jnp.round(ratio * num_maskable)), 0).astype(
        jnp.int32
    )
    scores = jnp.where(maskable, jax.random.uniform(pick_rng, ids.shape), 2.0)
    picked = _hide_lowest(scores, count) & maskable
    kind = jax.random.uniform(kind_rng, ids.shape)
    random_ids = jax.random.randint(token_rng, ids.shape, special_tokens.NUM_RESERVED, vocab_size)
    corrupted = jnp.where(
        kind < mask_prob,
        special_tokens.MASK,
        jnp.where(kind < mask_prob + random_prob, random_ids, ids),
    )
    return jnp.where(picked, corrupted, ids).astype(ids.dtype), picked


def make_masks(rng, cfg, batch, grid: int, vocab_size: int) -> dict:
    """All masks of one step: {"image": [B, N] | None, "image_keep" (when hidden patches
    are dropped rather than replaced), "text_ids", "text_picked"}."""
    image_rng, text_rng = jax.random.split(rng)
    batch_size = batch["image"].shape[0]
    masks = {"image": image_mask(image_rng, cfg.image, batch_size, grid)}
    if cfg.image.drop and masks["image"] is not None:
        masks["image_keep"] = visible_indices(masks["image"], hidden_count(cfg.image, grid))
    if cfg.text.kind == "bert":
        masks["text_ids"], masks["text_picked"] = bert_text_mask(
            text_rng, batch["text"], cfg.text.ratio, vocab_size
        )
    elif cfg.text.kind != "none":
        raise ValueError(f"mask.text.kind={cfg.text.kind!r} is not one of none, bert")
    return masks
