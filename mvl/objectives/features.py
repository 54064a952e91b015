"""Feature prediction: the student predicts a teacher's features of the hidden patches.

MVP's target is a frozen CLIP image tower's per-patch features; the score is the cosine
distance (default, [?] in the paper) or the MSE, averaged over hidden patches.
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl.objectives import register


def feature_loss(predicted, target, hidden, kind: str = "cosine"):
    """Mean over hidden patches ([B, N] bool) of 1 - cos or the mean squared error."""
    predicted, target = predicted.astype(jnp.float32), target.astype(jnp.float32)
    if kind == "cosine":
        dot = jnp.sum(predicted * target, -1)
        norms = jnp.linalg.norm(predicted, axis=-1) * jnp.linalg.norm(target, axis=-1)
        per_patch = 1.0 - dot / jnp.maximum(norms, 1e-6)
    elif kind == "mse":
        per_patch = jnp.square(predicted - target).mean(-1)
    else:
        raise ValueError(f"objectives.features.loss={kind!r} is not one of cosine, mse")
    hidden = hidden.astype(jnp.float32)
    return (per_patch * hidden).sum() / jnp.maximum(hidden.sum(), 1.0), {}


@register("features", needs=lambda cfg: ("image", "feature_head"))
def features(forward, cfg):
    if "image_keep" in forward.masks:
        raise ValueError("objectives.features needs mask.image.drop=False (it scores every patch)")
    predicted = forward.call("predict_features", forward.image_tokens(masked=True))
    target = forward.teacher_patch_features()
    return feature_loss(predicted, target, forward.masks["image"], cfg.loss)
