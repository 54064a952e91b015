"""A picture of masked image modeling: original / masked input / reconstruction rows.

Works for both pixel objectives: `mim` (a decoder predicts each patch's pixels) and
MLIM's `recon` (a deconvolution decoder redraws the whole image).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mvl import objectives, targets
from mvl.objectives.mim import predict_pixels
from mvl.train.forward import Forward
from mvl.train.step import make_masks


def pixel_objective(cfg) -> str | None:
    """The enabled objective that predicts pixels (mim or recon), if any."""
    enabled = objectives.enabled(cfg.objectives)
    return next((name for name in ("mim", "recon") if name in enabled), None)


def _predicted_patches(forward, cfg, patch: int):
    if pixel_objective(cfg) == "recon":
        image = forward.head("deconv_decoder", forward.stream_tokens(masked=True)[1])
        return targets.patchify(image, patch)
    predicted = predict_pixels(forward, cfg.objectives.mim)
    if cfg.objectives.mim.normalize:  # undo per-patch normalisation with the true stats
        original = targets.patchify(forward.batch["image"], patch)
        mean = original.mean(-1, keepdims=True)
        std = jnp.sqrt(original.var(-1, keepdims=True) + 1e-6)
        predicted = predicted * std + mean
    return predicted


def make_reconstruct_fn(model, cfg, vocab_size: int):
    """A jitted (params, batch, rng) -> (hidden [B, N], reconstructed images [B, H, W, 3])."""
    patch = cfg.model.image.patch_size

    def reconstruct(params, batch, rng):
        masks = make_masks(cfg, batch, rng, model)
        forward = Forward(model, params, batch, masks, rng)
        predicted = _predicted_patches(forward, cfg, patch)
        original = targets.patchify(batch["image"], patch)
        hidden = masks.image_hidden[..., None]
        pasted = jnp.where(hidden, predicted, original)  # visible patches stay original
        return masks.image_hidden, jnp.clip(targets.unpatchify(pasted, patch), 0.0, 1.0)

    return jax.jit(reconstruct)


def grid_image(
    images: np.ndarray, hidden: np.ndarray, reconstructed: np.ndarray, patch_size: int, gap: int = 2
) -> np.ndarray:
    """uint8 [3 * H + gaps, B * W + gaps, 3]: rows original, masked (grey), reconstructed."""
    masked_patches = np.where(
        hidden[..., None], 0.5, np.asarray(targets.patchify(images, patch_size))
    )
    masked = np.asarray(targets.unpatchify(masked_patches, patch_size))
    rows = [
        np.concatenate(list(_pad(batch, gap)), axis=1) for batch in (images, masked, reconstructed)
    ]
    picture = np.concatenate(
        [np.pad(r, ((0, gap), (0, 0), (0, 0)), constant_values=1.0) for r in rows], axis=0
    )
    return (np.clip(picture, 0, 1) * 255).round().astype(np.uint8)


def _pad(batch, gap):
    return [np.pad(image, ((0, 0), (0, gap), (0, 0)), constant_values=1.0) for image in batch]
