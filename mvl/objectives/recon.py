"""RECON (MLIM): the image redrawn by a deconvolution decoder, scored by the sum of
squared pixel errors per image, averaged over the images that have scored pixels."""

from __future__ import annotations

import jax.numpy as jnp

from mvl import mask
from mvl.models.decoders import DeconvDecoder
from mvl.objectives import register, rules

REGIONS = ("masked", "all")


def pixel_weights(hidden, grid: int, patch_size: int):
    """[B, N] hidden patches -> [B, H, W] pixel weights (1 inside hidden patches)."""
    batch = hidden.shape[0]
    per_patch = hidden.reshape(batch, grid, 1, grid, 1).astype(jnp.float32)
    per_pixel = jnp.broadcast_to(per_patch, (batch, grid, patch_size, grid, patch_size))
    return per_pixel.reshape(batch, grid * patch_size, grid * patch_size)


def recon_loss(predicted, images, weights, scored_images):
    """Mean over scored images of sum over pixels and channels of weight * error^2.

    `weights` [B, H, W] selects pixels (hidden area, or all); `scored_images` [B] marks
    the images that count (not dropped, and with at least one weighted pixel).
    """
    error = jnp.square(predicted.astype(jnp.float32) - images.astype(jnp.float32)).sum(-1)
    per_image = (error * weights).sum((1, 2))
    scored = (scored_images & (weights.sum((1, 2)) > 0)).astype(jnp.float32)
    loss = (per_image * scored).sum() / jnp.maximum(scored.sum(), 1.0)
    pixels = jnp.maximum((weights.sum((1, 2)) * scored).sum() * 3, 1.0)
    return loss, {"mse": (per_image * scored).sum() / pixels, "scored": scored.sum()}


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


@register(
    "recon", heads=heads, validate=validate, reconstruct=reconstruct_images, count=scored_images
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
    return recon_loss(predicted, images, weights, forward.masks.keep_image)
