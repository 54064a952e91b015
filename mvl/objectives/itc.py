"""ITC: symmetric InfoNCE between image and text embeddings (CLIP, ALBEF, MaskVLM)."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from mvl.models.heads import LogitScale, Projection
from mvl.objectives import register, rules


def itc_loss(image_emb, text_emb, logit_scale, max_scale: float = 100.0):
    """Mean of image->text and text->image cross-entropy over the (global) batch.

    `logit_scale` is the log inverse temperature; exp(logit_scale) is clipped at
    `max_scale` (CLIP clips at 100).
    """
    scale = jnp.minimum(jnp.exp(logit_scale), max_scale)
    logits = scale * image_emb @ text_emb.T
    labels = jnp.arange(logits.shape[0])
    i2t = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    t2i = optax.softmax_cross_entropy_with_integer_labels(logits.T, labels).mean()
    metrics = {"accuracy": (jnp.argmax(logits, -1) == labels).mean(), "scale": scale}
    return (i2t + t2i) / 2, metrics


def embedding_heads(cfg, model) -> dict:
    """Image and text [CLS] -> the shared embedding space, and ITC's learnable logit
    scale (ITM draws its hard negatives from the same similarities)."""
    return {
        "image_projection": Projection(cfg.model.embed_dim),
        "text_projection": Projection(cfg.model.embed_dim),
        "temperature": LogitScale(cfg.model.init_temperature),
    }


def validate(cfg):
    rules.two_towers(cfg)
    if not cfg.model.init_temperature > 0:
        rules.fail("model.init_temperature", cfg.model.init_temperature, "must be > 0")


@register("itc", heads=embedding_heads, validate=validate, coupled=True)
def itc(forward, cfg):
    image = forward.image_embedding(masked=cfg.masked_image)  # FLIP: visible patches only
    return itc_loss(image, forward.text_embedding(), forward.logit_scale(), cfg.max_scale)
