"""A picture of masked image modeling: original / masked input / reconstruction rows.

It draws what any pixel objective redraws: it is given `reconstruct(forward) -> images
[B, H, W, 3]` (the enabled objective's own, mvl/evaluate/evaluators/reconstructions.py),
masks the held-out images as training does, and pastes the original visible patches
back, so the picture shows what the objective predicted where it had to.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from mvl import targets
from mvl.train.forward import Forward
from mvl.train.step import make_masks


def make_reconstruct_fn(model, cfg, vocab_size: int, reconstruct):
    """A jitted (params, batch, rng) -> (hidden [B, N], reconstructed images [B, H, W, 3])."""
    patch = cfg.model.image.patch_size

    def reconstruct_batch(params, batch, rng):
        masks = make_masks(cfg, batch, rng, model)
        forward = Forward(model, params, batch, masks, rng)
        predicted = targets.patchify(reconstruct(forward), patch)
        original = targets.patchify(batch["image"], patch)
        hidden = masks.image_hidden[..., None]
        pasted = jnp.where(hidden, predicted, original)  # visible patches stay original
        return masks.image_hidden, jnp.clip(targets.unpatchify(pasted, patch), 0.0, 1.0)

    return jax.jit(reconstruct_batch)


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
