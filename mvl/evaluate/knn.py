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
    block_size: int = 1024,
) -> float:
    train_x, test_x = _normalise(train_x), _normalise(test_x)
    k = min(k, len(train_x))
    correct = 0
    for start in range(0, len(test_x), block_size):
        similarity = test_x[start : start + block_size] @ train_x.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(similarity, nearest, axis=1) / temperature)
        votes = np.zeros((len(similarity), num_classes))
        np.add.at(votes, (np.arange(len(similarity))[:, None], train_y[nearest]), weights)
        correct += int((votes.argmax(1) == test_y[start : start + block_size]).sum())
    return correct / len(test_x)


def _normalise(x):
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
