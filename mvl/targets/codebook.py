"""Codebook targets (MaskCLIP): the teacher's feature as a sharp distribution over
codewords, softmax(cos(feature, codeword) / temperature), with no gradient."""

from __future__ import annotations

import jax

from mvl.models.heads import l2_normalize


def codeword_logits(features, codewords, temperature: float):
    return l2_normalize(features) @ l2_normalize(codewords).T / temperature


def codeword_targets(teacher_features, codewords, temperature: float) -> jax.Array:
    """[B, N, K] the teacher's codeword distribution of each patch."""
    logits = codeword_logits(teacher_features, codewords, temperature)
    return jax.nn.softmax(jax.lax.stop_gradient(logits), -1)
