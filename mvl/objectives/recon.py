"""RECON (MLIM): the image redrawn by a deconvolution decoder, scored by squared pixel
errors over the scored pixels (the hidden area, or the whole image).

MLIM calls RECON "an average of pixel-wise sum of squared errors"; how the sum and the
average are taken is not stated, and the choice sets RECON's scale against MLM's
cross-entropy (one global gradient clip, optim.grad_clip_norm, covers both), so it is
a key, `objectives.recon.reduction`:
  "sse_mean_over_pixels" (default): each pixel's SSE over its 3 channels, averaged over
      the scored pixels of every scored image. The paper's words read literally ("pixel-
      wise SSE", "average"); values in [0, 3], the order of a cross-entropy, so MLM's
      gradient is not crowded out under the clip (docs/methods.md gives the measured
      per-objective gradient norms).
  "mean_over_values": the same divided by 3: the mean squared error of every scored
      channel value (MAE's normalisation, without per-patch pixel normalisation).
  "sum_per_image": each image's SSE summed over all its scored pixels and channels,
      averaged over the images (mvl's earlier default): 12k-120k terms per image at
      64-224 px, so RECON's gradient dwarfs MLM's under the clip.
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl import mask
from mvl.models.decoders import DeconvDecoder
from mvl.objectives import register, rules

REGIONS = ("masked", "all")
REDUCTIONS = ("sse_mean_over_pixels", "mean_over_values", "sum_per_image")


def pixel_weights(hidden, grid: int, patch_size: int):
    """[B, N] hidden patches -> [B, H, W] pixel weights (1 inside hidden patches)."""
    batch = hidden.shape[0]
    per_patch = hidden.reshape(batch, grid, 1, grid, 1).astype(jnp.float32)
    per_pixel = jnp.broadcast_to(per_patch, (batch, grid, patch_size, grid, patch_size))
    return per_pixel.reshape(batch, grid * patch_size, grid * patch_size)


def recon_loss(predicted, images, weights, scored_images, reduction="sse_mean_over_pixels"):
    """RECON of `predicted` against `images` [B, H, W, 3] under `reduction` (REDUCTIONS).

    `weights` [B, H, W] selects pixels (hidden area, or all); `scored_images` [B] marks
    the images that count (not dropped, and with at least one weighted pixel).
    """
    error = jnp.square(predicted.astype(jnp.float32) - images.astype(jnp.float32)).sum(-1)
    per_image = (error * weights).sum((1, 2))  # SSE over each image's scored pixels
    scored = (scored_images & (weights.sum((1, 2)) > 0)).astype(jnp.float32)
    total_sse = (per_image * scored).sum()
    pixels = jnp.maximum((weights.sum((1, 2)) * scored).sum(), 1.0)
    if reduction == "sum_per_image":
        loss = total_sse / jnp.maximum(scored.sum(), 1.0)
    elif reduction == "sse_mean_over_pixels":
        loss = total_sse / pixels
    elif reduction == "mean_over_values":
        loss = total_sse / (pixels * 3)
    else:
        raise ValueError(f"objectives.recon.reduction={reduction!r} is not one of {REDUCTIONS}")
    return loss, {"mse": total_sse / (pixels * 3), "scored": scored.sum()}


def heads(cfg, model) -> dict:
    common = model.layer_kwargs()
    decoder = DeconvDecoder(
        cfg.model.image.patch_size, cfg.model.deconv_decoder.width, common["act"], common["dtype"]
    )
    return {"deconv_decoder": decoder}


def validate(cfg):
    region = cfg.objectives.recon.region
    if region not in REGIONS:
        raise rules.ConfigError(
            f"config objectives.recon.region={region!r} is not one of {REGIONS}"
        )
    # .get: configs saved before the key existed scored the per-image sum
    reduction = cfg.objectives.recon.get("reduction", "sum_per_image")
    if reduction not in REDUCTIONS:
        raise rules.ConfigError(
            f"config objectives.recon.reduction={reduction!r} is not one of {REDUCTIONS}"
        )
    rules.power_of_two_patches(cfg, "the deconvolution decoder (objectives.recon)")
    rules.single_stream(cfg)
    rules.part(cfg, "deconv_decoder")


def reconstruct_images(forward, cfg):
    return forward.head("deconv_decoder", forward.stream_tokens(masked=True)[1])


def scores_hidden_area(masks, section) -> bool:
    return section.region != "all" and masks.patches != mask.NO_PATCHES_HIDDEN


def scored_images(batch, masks, section):
    """The count RECON's loss divides by (gradient accumulation divides by the batch's):
    images modality dropout kept, with at least one scored pixel."""
    if scores_hidden_area(masks, section):
        return (masks.keep_image & masks.image_hidden.any(-1)).sum()
    return masks.keep_image.sum()


def scored_count(batch, masks, section):
    """What the loss divides by, under its reduction: scored images (sum_per_image) or
    the scored images' weighted pixels (the per-pixel means), as recon_loss counts them."""
    if section.get("reduction", "sum_per_image") == "sum_per_image":
        return scored_images(batch, masks, section)
    size = batch["image"].shape[1]
    if scores_hidden_area(masks, section):
        pixels_per_patch = size * size // masks.image_hidden.shape[1]
        pixels = masks.image_hidden.sum(-1) * pixels_per_patch
    else:
        pixels = jnp.full(masks.keep_image.shape, size * size)
    return jnp.maximum((pixels * masks.keep_image).sum(), 1)


@register(
    "recon", heads=heads, validate=validate, reconstruct=reconstruct_images, count=scored_count
)
def recon(forward, cfg):
    images = forward.batch["image"]
    batch, size = images.shape[:2]
    if not scores_hidden_area(forward.masks, cfg):
        weights = jnp.ones((batch, size, size), jnp.float32)
    else:
        grid = size // forward.patch_size
        weights = pixel_weights(forward.masks.image_hidden, grid, forward.patch_size)
    # The image, redrawn from the single stream's patch tokens.
    predicted = forward.head("deconv_decoder", forward.stream_tokens(masked=True)[1])
    reduction = cfg.get("reduction", "sum_per_image")
    return recon_loss(predicted, images, weights, forward.masks.keep_image, reduction)
