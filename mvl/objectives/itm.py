"""ITM: match / no-match classification with in-batch hard negatives (ALBEF-style).

For every image one negative text, and for every text one negative image, is drawn
from the softmax of the (stop-gradient) similarity with the diagonal zeroed, so
negatives that are hard to tell apart are drawn more often.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from mvl.models.heads import ItmHead
from mvl.objectives import register, rules
from mvl.objectives.itc import embedding_heads


def sample_hard_negatives(rng, similarity):
    """Returns (negative text index per image, negative image index per text)."""
    n = similarity.shape[0]
    off_diagonal = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, similarity)
    text_rng, image_rng = jax.random.split(rng)
    negative_text = jax.random.categorical(text_rng, off_diagonal, axis=1)
    negative_image = jax.random.categorical(image_rng, off_diagonal.T, axis=1)
    return negative_text, negative_image


def itm_loss(logits, labels):
    """Mean two-way cross-entropy; labels 1 = match."""
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, {"accuracy": (jnp.argmax(logits, -1) == labels).mean()}


def heads(cfg, model) -> dict:
    """ITC's embedding heads (the similarities negatives are drawn from) and the
    match / no-match head on the two fused [CLS] tokens."""
    return {**embedding_heads(cfg, model), "itm_head": ItmHead()}


@register("itm", heads=heads, validate=lambda cfg: rules.two_towers(cfg, fusion=True), coupled=True)
def itm(forward, cfg):
    image_emb = jax.lax.stop_gradient(forward.image_embedding())
    text_emb = jax.lax.stop_gradient(forward.text_embedding())
    scale = jax.lax.stop_gradient(jnp.exp(forward.logit_scale()))
    negative_text, negative_image = sample_hard_negatives(
        forward.rng("itm"), scale * image_emb @ text_emb.T
    )
    images, texts, ids = forward.image_tokens(), forward.text_tokens(), forward.ids()
    pair_images = jnp.concatenate([images, images, images[negative_image]])
    pair_texts = jnp.concatenate([texts, texts[negative_text], texts])
    pair_ids = jnp.concatenate([ids, ids[negative_text], ids])
    # The ITM head reads only each encoder's [CLS]: the last fusion block computes that
    # token alone (the same values; a third of MaskVLM's demo step was the other tokens).
    fused_image = forward.call("fuse_image", pair_images, pair_texts, pair_ids, True)
    fused_text = forward.call("fuse_text", pair_texts, pair_ids, pair_images, True)
    logits = forward.call("itm_logits", fused_image, fused_text)  # the model's, for eval too
    n = images.shape[0]
    labels = jnp.concatenate([jnp.ones(n, jnp.int32), jnp.zeros(2 * n, jnp.int32)])
    return itm_loss(logits, labels)
