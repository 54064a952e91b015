"""MLM: cross-entropy on the masked text positions."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from mvl.objectives import register


def mlm_loss(logits, labels, weights):
    """Weighted mean token cross-entropy; `weights` [B, L] marks the scored positions."""
    weights = weights.astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    count = jnp.maximum(weights.sum(), 1.0)
    accuracy = ((jnp.argmax(logits, -1) == labels) * weights).sum() / count
    return (losses * weights).sum() / count, {"accuracy": accuracy}


@register("mlm", needs=lambda cfg: ("image", "text", "fusion", "mlm_head"))
def mlm(forward, cfg):
    """MaskVLM's text pass: masked text attends to the full image, then the MLM head."""
    logits = forward.call("mlm_logits", forward.fused_text(masked_text=True))
    return mlm_loss(logits, forward.ids(), forward.masks["text_picked"])
