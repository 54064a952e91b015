"""Feature prediction: the student predicts a teacher's features of the hidden patches.

MVP's target is a frozen CLIP image tower's per-patch features; the score is the cosine
distance (default, [?] in the paper) or the MSE, averaged over hidden patches.
`head` picks the predictor: `linear` (MVP) on the student's tokens, which must cover
every patch (mask tokens, not dropping), or `decoder`, a transformer that re-inserts
dropped patches (MaskCLIP's shallow decoder).
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl.objectives import register

HEADS = {"linear": "feature_head", "decoder": "feature_decoder"}


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


def head_needs(head: str, where: str) -> tuple[str, ...]:
    if head not in HEADS:
        raise ValueError(f"config {where}.head={head!r} is not one of {', '.join(HEADS)}")
    return ("image", HEADS[head])


def predict_patch_features(forward, head: str, where: str):
    """[B, N, C] predicted teacher features of every patch from the masked image."""
    keep = forward.masks.get("image_keep")
    tokens = forward.image_tokens(masked=True)
    if head == "linear":
        if keep is not None:
            raise ValueError(f"config {where}.head='linear' needs mask.image.drop=False")
        return forward.call("predict_features", tokens)
    return forward.call("decode_features", tokens, keep)


@register("features", needs=lambda cfg: head_needs(cfg.head, "objectives.features"))
def features(forward, cfg):
    predicted = predict_patch_features(forward, cfg.head, "objectives.features")
    target = forward.teacher_patch_features()
    return feature_loss(predicted, target, forward.masks["image"], cfg.loss)
