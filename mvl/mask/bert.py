"""Text kind "bert": BERT's masking of caption tokens ([MASK] / random / unchanged)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.data import special_tokens
from mvl.mask.ranks import hide_lowest
from mvl.mask.registry import register_text_kind


def bert_text_mask(
    rng,
    ids: jax.Array,
    ratio,
    vocab_size: int,
    special: special_tokens.SpecialIds,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
):
    """BERT masking: picks max(1, round(ratio * n)) of each row's n maskable tokens
    (none where the ratio is 0; `ratio` may be a [B] array of per-example ratios).

    Maskable means a caption token: not pad nor the tokenizer's start / end / class
    tokens (`special`, the tokenizer's ids). Of the picked tokens, `mask_prob` become
    [MASK], `random_prob` a random ordinary token, the rest stay unchanged.
    Returns (corrupted ids, picked positions).
    """
    pick_rng, kind_rng, token_rng = jax.random.split(rng, 3)
    maskable = special.maskable(ids)
    num_maskable = maskable.sum(-1)
    ratio = jnp.broadcast_to(jnp.asarray(ratio, jnp.float32), num_maskable.shape)
    wanted = jnp.maximum(1, jnp.round(ratio * num_maskable))
    count = jnp.where((num_maskable > 0) & (ratio > 0), wanted, 0).astype(jnp.int32)
    scores = jnp.where(maskable, jax.random.uniform(pick_rng, ids.shape), 2.0)
    picked = hide_lowest(scores, count) & maskable
    kind = jax.random.uniform(kind_rng, ids.shape)
    low, high = special.ordinary_range(vocab_size)
    random_ids = jax.random.randint(token_rng, ids.shape, low, high)
    corrupted = jnp.where(
        kind < mask_prob,
        special.mask,
        jnp.where(kind < mask_prob + random_prob, random_ids, ids),
    )
    return jnp.where(picked, corrupted, ids).astype(ids.dtype), picked


def _validate(cfg):
    if cfg.mask_prob + cfg.random_prob > 1:
        raise ValueError(
            f"config mask.text.random_prob={cfg.random_prob!r}: "
            "mask_prob + random_prob must be <= 1"
        )


@register_text_kind("bert", validate=_validate)
def bert_kind(rng, cfg, ids, ratio, vocab_size: int, special):
    return bert_text_mask(rng, ids, ratio, vocab_size, special, cfg.mask_prob, cfg.random_prob)
