"""Pair matching (MLIM's downstream task): do two items show the same thing? Each item
is embedded alone (image and text together, or one of them when the other is missing:
modality dropout), every pair is scored by cosine similarity, and the score is the area
under the precision-recall curve (average precision) against the pairs' true labels.

On `shapes` two items match when their main objects have the same shape and colour.
"""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve, as the mean precision at each positive
    (ties broken against the positives, so a constant score earns only chance)."""
    order = np.lexsort((labels, -scores))  # by score, descending; negatives first on ties
    hits = labels[order].astype(bool)
    if not hits.any():
        return 0.0
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


def pair_matching_metrics(embeddings: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Average precision over all pairs i < j, and the positive rate (chance)."""
    emb = embeddings / (np.linalg.norm(embeddings, axis=1, keepdims=True) + 1e-12)
    first, second = np.triu_indices(len(emb), k=1)
    scores = np.einsum("pd,pd->p", emb[first], emb[second])
    labels = classes[first] == classes[second]
    return {"average_precision": average_precision(scores, labels), "chance": float(labels.mean())}
