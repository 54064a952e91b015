"""A user's objective and mask kind, written outside mvl/ (the README walks through it).

The mask kind "stripes" hides whole rows of patches. The objective "patch_colour"
predicts each hidden patch's mean colour from the masked image with a head of its own
(`colour_head`). A config enables both by naming this file in `imports`
(tests/plugins/patch_colour_config.py).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvl import mask, objectives, targets
from mvl.objectives import rules


# A mask kind: a function that hides an exact count per example, and that count.
def hidden_rows(cfg, grid: int) -> int:
    return int(round(cfg.ratio * grid))


@mask.register_image_kind("stripes", hidden_count=lambda cfg, grid: hidden_rows(cfg, grid) * grid)
def stripes(rng, cfg, batch_size: int, grid: int, ratio):
    scores = jax.random.uniform(rng, (batch_size, grid))
    rows = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1) < hidden_rows(cfg, grid)
    return jnp.repeat(rows, grid, axis=1)  # [B, grid * grid], row-major like the patches


# An objective: its head, its rules, its loss.
class ColourHead(nn.Module):
    """Patch tokens -> an RGB colour per patch."""

    @nn.compact
    def __call__(self, tokens):
        return nn.Dense(3, name="to_rgb")(tokens)


def heads(cfg, model) -> dict:
    return {"colour_head": ColourHead()}


def validate(cfg):
    rules.two_towers(cfg, text=False)  # it runs the image tower only
    if cfg.mask.image.kind == "none":
        rules.fail("mask.image.kind", "none", "objectives.patch_colour needs hidden patches")


@objectives.register("patch_colour", heads=heads, validate=validate)
def patch_colour(forward, cfg):
    tokens = forward.image_tokens(masked=True)[:, 1:]  # [CLS] dropped
    predicted = forward.head("colour_head", tokens)
    pixels = targets.pixel_targets(forward.batch["image"], forward.patch_size, normalize=False)
    target = pixels.reshape(pixels.shape[:2] + (-1, 3)).mean(2)  # mean colour per patch
    hidden = forward.masks.image_hidden.astype(jnp.float32)
    per_patch = jnp.square(predicted - target).mean(-1)
    loss = (per_patch * hidden).sum() / jnp.maximum(hidden.sum(), 1.0)
    return loss, {"hidden_patches": hidden.sum(1).mean()}
