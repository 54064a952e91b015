"""Retrieval with ITM re-ranking (the ALBEF / MaskVLM protocol): for every query the
top-k candidates by embedding similarity are re-scored by the ITM head, which sees the
pair through the fusion layers; the rest keep their order below them."""

from __future__ import annotations

from typing import Callable

import numpy as np

from mvl.evaluate.retrieval import recall_at_k

# Pair scorer: (query rows [M], candidate rows [M]) -> match scores [M].
PairScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def reranked(similarity: np.ndarray, score_pairs: PairScorer, k: int) -> np.ndarray:
    """A [Nq, Nc] score matrix whose top-k per row are ITM scores lifted above the rest."""
    k = min(k, similarity.shape[1])
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    queries = np.repeat(np.arange(similarity.shape[0]), k)
    scores = np.asarray(score_pairs(queries, top.reshape(-1)), np.float64).reshape(-1, k)
    out = similarity.astype(np.float64)
    lift = out.max() - out.min() + 1.0 - scores.min()  # every re-scored pair ranks first
    out[np.arange(len(out))[:, None], top] = scores + out.max() + lift
    return out


def reranked_retrieval_metrics(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    itm_score: PairScorer,
    k: int,
    ks=(1, 5, 10),
) -> dict[str, float]:
    """Recall@K both ways after re-ranking; `itm_score(image rows, text rows)`."""
    similarity = image_emb @ text_emb.T
    metrics = {}
    directions = (
        ("image_to_text", similarity, itm_score),
        ("text_to_image", similarity.T, lambda texts, images: itm_score(images, texts)),
    )
    for direction, sim, scorer in directions:
        for name, value in recall_at_k(reranked(sim, scorer, k), ks).items():
            metrics[f"retrieval_itm/{direction}/{name}"] = value
    return metrics
