"""Zero-shot classification: images against prompt-ensembled class-name embeddings."""

from __future__ import annotations

import numpy as np


def class_embeddings(embed_texts, class_names, prompts) -> np.ndarray:
    """[C, D]: each class's prompts embedded, averaged, re-normalised (CLIP's ensemble)."""
    rows = []
    for name in class_names:
        emb = embed_texts([p.format(name) for p in prompts]).mean(0)
        rows.append(emb / np.linalg.norm(emb))
    return np.stack(rows)


def zeroshot_accuracy(image_emb: np.ndarray, class_emb: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(image_emb @ class_emb.T, axis=1) == labels).mean())
