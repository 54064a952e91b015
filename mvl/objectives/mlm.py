"""MLM: cross-entropy on the masked text positions, after one of three encoders.

`encoder` picks what the masked text passes through before the MLM head:
  fusion        MaskVLM: the text cross-modal encoder attends to the full image;
  single_stream MLIM: the single-stream encoder over [masked text; (masked) image];
  text_decoder  MaskCLIP: the text tower, then a text-only transformer decoder.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from mvl.objectives import register

ENCODERS = {
    "fusion": ("image", "text", "fusion"),
    "single_stream": ("single_stream",),
    "text_decoder": ("text", "text_decoder"),
}


def mlm_loss(logits, labels, weights):
    """Weighted mean token cross-entropy; `weights` [B, L] marks the scored positions."""
    weights = weights.astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    count = jnp.maximum(weights.sum(), 1.0)
    accuracy = ((jnp.argmax(logits, -1) == labels) * weights).sum() / count
    return (losses * weights).sum() / count, {"accuracy": accuracy, "scored": weights.sum()}


def _needs(cfg):
    if cfg.encoder not in ENCODERS:
        raise ValueError(
            f"config objectives.mlm.encoder={cfg.encoder!r} is not one of {', '.join(ENCODERS)}"
        )
    return ENCODERS[cfg.encoder] + ("mlm_head",)


def masked_text_tokens(forward, encoder: str):
    if encoder == "fusion":
        return forward.fused_text(masked_text=True)
    if encoder == "single_stream":
        return forward.stream_tokens(masked=True)[0]
    return forward.call("decode_text", forward.text_tokens(masked=True), forward.ids(masked=True))


@register("mlm", needs=_needs)
def mlm(forward, cfg):
    logits = forward.call("mlm_logits", masked_text_tokens(forward, cfg.encoder))
    scored = forward.masks["text_picked"]
    if "keep_text" in forward.masks:  # modality dropout: a dropped text is not scored
        scored = scored & forward.masks["keep_text"][:, None]
    return mlm_loss(logits, forward.ids(), scored)
