"""Zero-shot classification as CLIP / open_clip / CLIP_benchmark score it: each class's
prompts (its name in every template) embedded, each prompt embedding L2-normalised,
averaged and re-normalised (prompt ensembling); an image's class is the one whose
ensemble it is most similar to; top-K counts a hit when the true class ranks < K
(ties favour it)."""

from __future__ import annotations

import numpy as np


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ensembled_class_embeddings(embed_texts, class_names, templates) -> np.ndarray:
    """[classes, D] from `embed_texts(list of str) -> [n, D]`, every prompt in one call."""
    prompts = [template.format(name) for name in class_names for template in templates]
    per_prompt = normalise(np.asarray(embed_texts(prompts), np.float32))
    return normalise(per_prompt.reshape(len(class_names), len(templates), -1).mean(1))


def top_k_accuracy(image_emb, class_emb, labels, ks=(1, 5), block_size=4096) -> dict:
    """{"top{K}": fraction of images whose class ranks < K}, scored in blocks of images."""
    ranks = []
    for start in range(0, len(image_emb), block_size):
        scores = image_emb[start : start + block_size] @ class_emb.T
        true = scores[np.arange(len(scores)), labels[start : start + block_size]]
        ranks.append((scores > true[:, None]).sum(1))
    ranks = np.concatenate(ranks)
    return {f"top{k}": float((ranks < k).mean()) for k in ks}
