"""MLM: cross-entropy on the masked text positions, after one of three encoders.

`encoder` picks what the masked text passes through before the MLM head:
  fusion        MaskVLM: the text cross-modal encoder attends to the full image;
  single_stream MLIM: the single-stream encoder over [masked text; (masked) image];
  text_decoder  MaskCLIP: the text tower, then a text-only transformer decoder (a head
                of this objective, like the MLM head).
The target is the original ids at the picked positions (mvl/targets/tokens.py).
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from mvl import targets
from mvl.models.decoders import TextDecoder
from mvl.models.heads import MlmHead
from mvl.objectives import register, rules

ENCODERS = ("fusion", "single_stream", "text_decoder")


def mlm_loss(logits, labels, weights):
    """Weighted mean token cross-entropy; `weights` [B, L] marks the scored positions."""
    weights = weights.astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    count = jnp.maximum(weights.sum(), 1.0)
    accuracy = ((jnp.argmax(logits, -1) == labels) * weights).sum() / count
    return (losses * weights).sum() / count, {"accuracy": accuracy, "scored": weights.sum()}


def heads(cfg, model) -> dict:
    parts = {"mlm_head": MlmHead(model.vocab_size, **model.layer_kwargs())}
    if cfg.objectives.mlm.encoder == "text_decoder":
        parts["text_decoder"] = TextDecoder(**dict(cfg.model.text_decoder), **model.stack_kwargs())
    return parts


def validate(cfg):
    encoder = cfg.objectives.mlm.encoder
    if encoder not in ENCODERS:
        raise rules.ConfigError(
            f"config objectives.mlm.encoder={encoder!r} is not one of {', '.join(ENCODERS)}"
        )
    if encoder == "fusion":
        rules.two_towers(cfg, fusion=True)
    elif encoder == "single_stream":
        rules.single_stream(cfg)
    else:
        rules.two_towers(cfg, image=False)
        rules.attention(cfg, "text_decoder", "text")


def masked_text_tokens(forward, encoder: str):
    if encoder == "fusion":
        return forward.fused_text(masked_text=True)
    if encoder == "single_stream":
        return forward.stream_tokens(masked=True)[0]
    tokens = forward.text_tokens(masked=True)
    return forward.head("text_decoder", tokens, forward.text_valid(masked=True))


def scored_tokens(batch, masks, section):
    """The count MLM's loss divides by (gradient accumulation divides by the batch's)."""
    return targets.token_targets(batch, masks)[1].sum()


@register("mlm", heads=heads, validate=validate, count=scored_tokens)
def mlm(forward, cfg):
    logits = forward.head("mlm_head", masked_text_tokens(forward, cfg.encoder))
    labels, scored = targets.token_targets(forward.batch, forward.masks)
    return mlm_loss(logits, labels, scored)
