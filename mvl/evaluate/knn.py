"""k-nearest-neighbour classification on frozen features: cosine similarity, each of the
k neighbours voting with weight exp(similarity / temperature) (the weighted kNN of
Wu et al. 2018, used by DINO and others)."""

from __future__ import annotations

import numpy as np


def knn_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    def normalise(x):
        x = np.asarray(x, np.float32)
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)

    similarity = normalise(test_x) @ normalise(train_x).T
    k = min(k, len(train_x))
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(similarity, nearest, axis=1) / temperature)
    votes = np.zeros((len(test_x), num_classes))
    np.add.at(votes, (np.arange(len(test_x))[:, None], train_y[nearest]), weights)
    return float((votes.argmax(1) == test_y).mean())
