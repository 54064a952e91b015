"""MIM: pixel reconstruction of the masked patches (L1 or MSE)."""

from __future__ import annotations

import jax.numpy as jnp

from mvl import targets
from mvl.objectives import register


def mim_loss(predicted, target, hidden, kind: str = "l1"):
    """Per-patch mean error over pixels, averaged over hidden patches ([B, N] bool)."""
    diff = predicted.astype(jnp.float32) - target
    if kind == "l1":
        per_patch = jnp.abs(diff).mean(-1)
    elif kind == "mse":
        per_patch = jnp.square(diff).mean(-1)
    else:
        raise ValueError(f"objectives.mim.loss={kind!r} is not one of l1, mse")
    hidden = hidden.astype(jnp.float32)
    return (per_patch * hidden).sum() / jnp.maximum(hidden.sum(), 1.0), {}


def _needs(cfg):
    return ("image", "pixel_decoder") + (("text", "fusion") if cfg.fusion else ())


def predict_pixels(forward, cfg):
    """Every patch's predicted pixels [B, N, P*P*3] from the masked image.

    With `cfg.fusion` (MaskVLM) the masked image attends to the full text and the
    decoder cross-attends to the full text too; otherwise the decoder sees the image only.
    """
    keep = forward.masks.get("image_keep")
    if cfg.fusion:
        tokens = forward.fused_image(masked_image=True)
        return forward.call("decode_pixels", tokens, forward.text_tokens(), forward.ids(), keep)
    return forward.call("decode_pixels", forward.image_tokens(masked=True), None, None, keep)


def reconstruct_images(forward, cfg):
    predicted = predict_pixels(forward, cfg)
    images = forward.batch["image"]
    return targets.pixels_from_targets(predicted, images, forward.patch_size, cfg.normalize)


@register("mim", needs=_needs, reconstruct=reconstruct_images)
def mim(forward, cfg):
    predicted = predict_pixels(forward, cfg)
    target = targets.pixel_targets(forward.batch["image"], forward.patch_size, cfg.normalize)
    return mim_loss(predicted, target, forward.masks["image"], cfg.loss)
