"""Pixel targets: each patch's pixels, optionally normalised per patch (MAE)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def patchify(images: jax.Array, patch_size: int) -> jax.Array:
    """[B, H, W, C] -> [B, N, P*P*C] in row-major patch order (the ViT token order)."""
    b, h, w, c = images.shape
    p = patch_size
    x = images.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: jax.Array, patch_size: int, channels: int = 3) -> jax.Array:
    b, n, _ = patches.shape
    grid, p = int(round(n**0.5)), patch_size
    x = patches.reshape(b, grid, grid, p, p, channels).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, grid * p, grid * p, channels)


def pixel_targets(
    images: jax.Array, patch_size: int, normalize: bool, eps: float = 1e-6
) -> jax.Array:
    """Per-patch pixels; with `normalize`, each patch is (p - mean) / sqrt(var + eps) (MAE)."""
    patches = patchify(images.astype(jnp.float32), patch_size)
    if not normalize:
        return patches
    mean = patches.mean(-1, keepdims=True)
    var = patches.var(-1, keepdims=True)
    return (patches - mean) / jnp.sqrt(var + eps)


def pixels_from_targets(
    predicted: jax.Array, images: jax.Array, patch_size: int, normalize: bool, eps: float = 1e-6
) -> jax.Array:
    """Images [B, H, W, 3] from per-patch predictions in `pixel_targets`' space: with
    `normalize`, undone with each true patch's mean and std (only a picture needs it)."""
    if normalize:
        patches = patchify(images.astype(jnp.float32), patch_size)
        std = jnp.sqrt(patches.var(-1, keepdims=True) + eps)
        predicted = predicted * std + patches.mean(-1, keepdims=True)
    return unpatchify(predicted, patch_size)
