"""Codebook targets (MaskCLIP): the teacher's feature as a sharp distribution over
codewords, softmax((cos(feature, codeword) - centre) / temperature), with no gradient.

The centre (DINO / iBOT's centering) is a running mean of the teacher's cosine scores
per codeword; subtracting it keeps one codeword from winning every patch, while the low
teacher temperature keeps each patch's distribution from going uniform.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.models.heads import l2_normalize


def codeword_similarity(features, codewords):
    """[..., K] cosine of each feature with each codeword."""
    return l2_normalize(features) @ l2_normalize(codewords).T


def codeword_logits(features, codewords, temperature: float):
    return codeword_similarity(features, codewords) / temperature


def codeword_targets(teacher_features, codewords, temperature: float, center=None) -> jax.Array:
    """[B, N, K] the teacher's codeword distribution of each patch; `center` ([K] or None)
    is subtracted from the cosine scores first."""
    scores = codeword_similarity(teacher_features, codewords)
    if center is not None:
        scores = scores - center
    return jax.nn.softmax(jax.lax.stop_gradient(scores / temperature), -1)


def batch_center(teacher_features, codewords) -> jax.Array:
    """[K] this batch's mean teacher cosine score per codeword, over every patch (the
    teacher sees the full image), the value the running centre moves towards."""
    scores = codeword_similarity(teacher_features, codewords)
    return jax.lax.stop_gradient(jnp.mean(scores.reshape(-1, scores.shape[-1]), 0))
