"""MIM: pixel reconstruction of the masked patches (L1 or MSE).

Reading it end to end: the masked image is encoded (mvl/train/forward.py), optionally
fused with the full text (MaskVLM), the pixel decoder head below predicts every
patch's pixels, and the target is each patch's pixels (mvl/targets/pixels.py).
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl import mask, targets
from mvl.models.decoders import TokenDecoder
from mvl.objectives import register, rules

LOSSES = ("l1", "mse")


def mim_loss(predicted, target, hidden, kind: str = "l1"):
    """Per-patch mean error over pixels, averaged over hidden patches ([B, N] bool);
    `kind` is checked by `validate` before anything is traced."""
    diff = predicted.astype(jnp.float32) - target
    per_patch = jnp.abs(diff).mean(-1) if kind == "l1" else jnp.square(diff).mean(-1)
    hidden = hidden.astype(jnp.float32)
    return (per_patch * hidden).sum() / jnp.maximum(hidden.sum(), 1.0), {}


def heads(cfg, model) -> dict:
    """The pixel decoder: patch tokens (re-inserting dropped ones) -> every patch's pixels."""
    return {
        "pixel_decoder": TokenDecoder(
            out_dim=cfg.model.image.patch_size**2 * 3,
            insert_mask_tokens=mask.patch_handling(cfg.mask) == mask.DROP,
            num_patches=mask.grid_of(cfg) ** 2,
            **dict(cfg.model.pixel_decoder),
            **model.stack_kwargs(),
        )
    }


def validate(cfg):
    section = cfg.objectives.mim
    if section.loss not in LOSSES:
        raise rules.ConfigError(
            f"objectives.mim.loss={section.loss!r} is not one of {', '.join(LOSSES)}"
        )
    rules.two_towers(cfg, text=section.fusion, fusion=section.fusion)
    rules.attention(cfg, "pixel_decoder")
    rules.positions(cfg, "pixel_decoder")


def predict_pixels(forward, cfg):
    """Every patch's predicted pixels [B, N, P*P*3] from the masked image.

    With `cfg.fusion` (MaskVLM) the masked image attends to the full text and the
    decoder cross-attends to the full text too; otherwise the decoder sees the image only.
    """
    keep = forward.masks.image_keep
    # MAE's decoder carries the encoder's [CLS] (model.pixel_decoder.keep_cls)
    first = 0 if forward.model.config.pixel_decoder.get("keep_cls", False) else 1
    if cfg.fusion:
        tokens = forward.fused_image(masked_image=True)
        context, valid = forward.text_tokens(), forward.text_valid()
        return forward.head("pixel_decoder", tokens[:, first:], context, valid, keep)
    tokens = forward.image_tokens(masked=True)
    return forward.head("pixel_decoder", tokens[:, first:], None, None, keep)


def reconstruct_images(forward, cfg):
    predicted = predict_pixels(forward, cfg)
    images = forward.batch["image"]
    return targets.pixels_from_targets(predicted, images, forward.patch_size, cfg.normalize)


def hidden_patches(batch, masks, section):
    """The count MIM's loss divides by (gradient accumulation divides by the batch's)."""
    return masks.image_hidden.sum()


@register(
    "mim", heads=heads, validate=validate, reconstruct=reconstruct_images, count=hidden_patches
)
def mim(forward, cfg):
    predicted = predict_pixels(forward, cfg)
    target = targets.pixel_targets(forward.batch["image"], forward.patch_size, cfg.normalize)
    return mim_loss(predicted, target, forward.masks.image_hidden, cfg.loss)
