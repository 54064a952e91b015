"""Captioning (LocCa, as SigLIP 2 uses it): a decoder reads the image encoder's un-pooled
patch tokens and predicts the caption; cross-entropy over the caption's tokens.

The caption ids are `start w1 ... wn end pad...` (the tokenizer's); the decoder's inputs
are ids[:, :-1], its targets ids[:, 1:], scored where the target is part of the caption
(its end token included, pads not). A share `parallel_fraction` of the rows is decoded
in parallel from mask tokens (no causal mask: CapPa's parallel prediction), the rest
with teacher forcing under a causal mask. The rows are the batch's first ones: the
batch is already a random draw, so which examples that picks is random too, and the
shapes stay static. `loss_chunk` > 0 projects onto the vocabulary that many positions
at a time (mvl/models/vocab_scores.py), which a 256k vocabulary needs on a TPU chip.

LocCa also trains referring-expression and grounded-captioning targets from boxes. The
sources mvl reads carry no boxes, so only captioning runs; the first trace says so.
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl.models.caption_decoder import CaptionDecoder
from mvl.objectives import register, rules

_told_no_boxes = []


def scored_mean(nll, correct, weights):
    """The caption loss: the mean over scored tokens of -log p(target), from per-position
    -log p(target) and argmax hits [B, L] (mvl/models/vocab_scores.py) and weights
    [B, L] (1 = scored); also the share of scored tokens predicted exactly."""
    weights = weights.astype(jnp.float32)
    count = jnp.maximum(weights.sum(), 1.0)
    return (nll * weights).sum() / count, {"accuracy": (correct * weights).sum() / count}


def split_rows(batch_size: int, parallel_fraction: float) -> int:
    """How many of the batch's (first) rows are decoded in parallel."""
    return int(round(parallel_fraction * batch_size))


def heads(cfg, model) -> dict:
    decoder = CaptionDecoder(
        vocab_size=model.vocab_size,
        max_len=cfg.data.max_text_len,
        **dict(cfg.model.caption_decoder),
        **model.layer_kwargs(),
        attention=model.config.get("attention", "xla"),
    )
    return {"caption_decoder": decoder}


def validate(cfg) -> None:
    rules.two_towers(cfg, text=False)
    rules.part(cfg, "caption_decoder")
    rules.attention(cfg, "caption_decoder")
    fraction = cfg.objectives.caption.parallel_fraction
    if not 0.0 <= fraction <= 1.0:
        rules.fail("objectives.caption.parallel_fraction", fraction, "must be in [0, 1]")
    chunk = cfg.objectives.caption.get("loss_chunk", 0)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        rules.fail("objectives.caption.loss_chunk", chunk, "must be an int >= 0 (0: all at once)")


def decoder_scores(forward, ids, image_tokens, parallel_rows: int, chunk: int):
    """(-log p(target), hit) [B, L - 1] of each next token of the caption inputs
    ids[:, :-1]: the first `parallel_rows` rows decoded in parallel from mask tokens,
    the others with teacher forcing; logits made `chunk` positions at a time."""
    inputs, targets = ids[:, :-1], ids[:, 1:]
    parts = []
    for rows, causal in ((slice(None, parallel_rows), False), (slice(parallel_rows, None), True)):
        if inputs[rows].shape[0]:
            parts.append(
                forward.head(
                    "caption_decoder",
                    inputs[rows],
                    image_tokens[rows],
                    causal,
                    targets[rows],
                    chunk,
                )
            )
    return tuple(jnp.concatenate(values, axis=0) for values in zip(*parts))


# coupled: which rows are decoded in parallel depends on their place in the batch, so
# gradient accumulation runs this loss on the full batch, from the cached image tokens
# (mvl/train/grad_cache.py), and the split stays the full batch's.
@register("caption", heads=heads, validate=validate, coupled=True)
def caption(forward, cfg):
    if "boxes" not in forward.batch and not _told_no_boxes:
        _told_no_boxes.append(True)
        print(
            "[caption] the batches carry no `boxes`: LocCa's referring-expression and "
            "grounded-captioning targets are off; captioning only",
            flush=True,
        )
    ids = forward.ids()
    image_tokens = forward.image_tokens()[:, 1:]  # the patches, [CLS] left out
    parallel_rows = split_rows(ids.shape[0], cfg.parallel_fraction)
    nll, correct = decoder_scores(
        forward, ids, image_tokens, parallel_rows, cfg.get("loss_chunk", 0)
    )
    weights = forward.text_valid()[:, 1:]
    loss, metrics = scored_mean(nll, correct, weights)
    if 0 < parallel_rows < ids.shape[0]:
        rows = slice(parallel_rows, None)
        metrics["causal_loss"] = scored_mean(nll[rows], correct[rows], weights[rows])[0]
    return loss, metrics
