"""SigLIP: a sigmoid loss on every image-text pair of the (global) batch (Zhai et al. 2023).

logits = exp(t') * z_img . z_txt + b; the diagonal pairs are positives (+1), every other
pair a negative (-1); loss = -mean over images of sum over texts of log sigmoid(label *
logit). t = exp(t') starts at 10 and b at -10, as in big_vision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.models.heads import Projection, SigmoidScaleBias
from mvl.objectives import register, rules


def siglip_loss(image_emb, text_emb, log_scale, bias):
    logits = jnp.exp(log_scale) * image_emb @ text_emb.T + bias
    labels = 2.0 * jnp.eye(logits.shape[0]) - 1.0
    loss = -jnp.sum(jax.nn.log_sigmoid(labels * logits), axis=-1).mean()
    accuracy = (jnp.argmax(logits, -1) == jnp.arange(logits.shape[0])).mean()
    return loss, {"accuracy": accuracy, "scale": jnp.exp(log_scale), "bias": bias}


def heads(cfg, model) -> dict:
    return {
        "image_projection": Projection(cfg.model.embed_dim),
        "text_projection": Projection(cfg.model.embed_dim),
        "sigmoid": SigmoidScaleBias(),
    }


@register("siglip", heads=heads, validate=rules.two_towers, coupled=True)
def siglip(forward, cfg):
    log_scale, bias = forward.head("sigmoid")
    image = forward.image_embedding(masked=cfg.masked_image)
    return siglip_loss(image, forward.text_embedding(), log_scale, bias)
