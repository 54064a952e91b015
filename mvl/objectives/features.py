"""Feature prediction: the student predicts a teacher's features of the hidden patches.

MVP's target is a frozen CLIP image tower's per-patch features (mvl/targets/teacher.py);
the score is the cosine distance (default, [?] in the paper) or the MSE, averaged over
hidden patches. `head` picks the predictor: `linear` (MVP) on the student's tokens,
which must cover every patch (mask tokens, not dropping), or `decoder`, a transformer
that re-inserts dropped patches (MaskCLIP's shallow decoder).
"""

from __future__ import annotations

import jax.numpy as jnp

from mvl import mask
from mvl.models.decoders import TokenDecoder
from mvl.models.heads import Projection
from mvl.objectives import register, rules

HEADS = {"linear": "feature_head", "decoder": "feature_decoder"}
LOSSES = ("cosine", "mse")


def feature_loss(predicted, target, hidden, kind: str = "cosine"):
    """Mean over hidden patches ([B, N] bool) of 1 - cos or the mean squared error;
    `kind` is checked by `validate` before anything is traced."""
    predicted, target = predicted.astype(jnp.float32), target.astype(jnp.float32)
    if kind == "cosine":
        dot = jnp.sum(predicted * target, -1)
        norms = jnp.linalg.norm(predicted, axis=-1) * jnp.linalg.norm(target, axis=-1)
        per_patch = 1.0 - dot / jnp.maximum(norms, 1e-6)
    else:
        per_patch = jnp.square(predicted - target).mean(-1)
    hidden = hidden.astype(jnp.float32)
    return (per_patch * hidden).sum() / jnp.maximum(hidden.sum(), 1.0), {}


def feature_heads(cfg, model, head: str) -> dict:
    """The predictor of teacher features (width: the teacher's), linear or a decoder."""
    feature_dim = cfg.teacher.image.width
    if head == "linear":
        return {"feature_head": Projection(feature_dim)}
    decoder = TokenDecoder(
        out_dim=feature_dim,
        insert_mask_tokens=mask.patch_handling(cfg.mask) == mask.DROP,
        num_patches=mask.grid_of(cfg) ** 2,
        **dict(cfg.model.feature_decoder),
        **model.stack_kwargs(),
    )
    return {"feature_decoder": decoder}


def validate_head(cfg, name: str) -> None:
    """The rules of a feature-predicting objective `name` (features, distill)."""
    head = cfg.objectives[name].head
    if head not in HEADS:
        raise rules.ConfigError(
            f"config objectives.{name}.head={head!r} is not one of {', '.join(HEADS)}"
        )
    if head == "linear" and mask.patch_handling(cfg.mask) == mask.DROP:
        raise rules.ConfigError(
            f"config objectives.{name}.head='linear' needs mask.image.drop=False"
        )
    rules.teacher(cfg, name)
    rules.two_towers(cfg, text=False)
    if head == "decoder":
        rules.attention(cfg, "feature_decoder")


def predict_patch_features(forward, head: str):
    """[B, N, C] predicted teacher features of every patch from the masked image."""
    tokens = forward.image_tokens(masked=True)[:, 1:]  # [CLS] dropped
    if head == "linear":
        return forward.head("feature_head", tokens)
    return forward.head("feature_decoder", tokens, None, None, forward.masks.image_keep)


def validate(cfg):
    validate_head(cfg, "features")
    loss = cfg.objectives.features.loss
    if loss not in LOSSES:
        raise rules.ConfigError(
            f"objectives.features.loss={loss!r} is not one of {', '.join(LOSSES)}"
        )


@register(
    "features",
    heads=lambda cfg, model: feature_heads(cfg, model, cfg.objectives.features.head),
    validate=validate,
    count=lambda batch, masks, section: masks.image_hidden.sum(),  # what the loss divides by
)
def features(forward, cfg):
    predicted = predict_patch_features(forward, cfg.head)
    target = forward.teacher_features()
    return feature_loss(predicted, target, forward.masks.image_hidden, cfg.loss)
