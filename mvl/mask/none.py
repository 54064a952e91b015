"""Kind "none": nothing hidden (image) or nothing corrupted (text)."""

from __future__ import annotations

import jax.numpy as jnp

from mvl.mask.registry import register_image_kind, register_text_kind


@register_image_kind("none", hidden_count=lambda cfg, grid: 0)
def no_patches(rng, cfg, batch_size: int, grid: int, ratio=None):
    return jnp.zeros((batch_size, grid * grid), bool)


@register_text_kind("none")
def no_words(rng, cfg, ids, ratio, vocab_size: int, special):
    return ids, jnp.zeros(ids.shape, bool)
