"""Teacher-feature targets: a teacher tower's per-patch features of the full image."""

from __future__ import annotations

import jax


def teacher_patch_features(teacher_module, teacher_params, images) -> jax.Array:
    """[B, N, C] features of every patch ([CLS] dropped), with no gradient (MVP, MaskCLIP)."""
    tokens = teacher_module.apply({"params": teacher_params}, images)
    return jax.lax.stop_gradient(tokens[:, 1:])
