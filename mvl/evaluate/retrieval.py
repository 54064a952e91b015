"""Image<->text retrieval recall@K; pair i is image i with text i."""

from __future__ import annotations

import numpy as np


def recall_at_k(similarity: np.ndarray, ks=(1, 5, 10)) -> dict[str, float]:
    """Recall@K of row i retrieving column i, for a [N, N] similarity matrix."""
    n = similarity.shape[0]
    correct = similarity[np.arange(n), np.arange(n)][:, None]
    # Rank = how many candidates score strictly higher than the true one (ties favour it).
    rank = (similarity > correct).sum(axis=1)
    return {f"r@{k}": float((rank < k).mean()) for k in ks}


def retrieval_metrics(image_emb: np.ndarray, text_emb: np.ndarray, ks=(1, 5, 10)) -> dict:
    """Both directions, with each recall's chance level (K / N) beside it."""
    similarity = image_emb @ text_emb.T
    n = similarity.shape[0]
    metrics = {}
    for direction, sim in (("image_to_text", similarity), ("text_to_image", similarity.T)):
        for name, value in recall_at_k(sim, ks).items():
            metrics[f"retrieval/{direction}/{name}"] = value
    for k in ks:
        metrics[f"retrieval/chance/r@{k}"] = min(k, n) / n
    return metrics
