"""A labelled image set as an evaluator's options name it: `source` "image_folder"
(`path` = its root) or "tfds" (`tfds_name`, a split, `path` = the tfds data_dir),
optionally thinned to `limit` evenly spaced images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mvl.evaluate.benchmarks.image_folder import LabelledImages, read_image_folder
from mvl.evaluate.benchmarks.tfds_source import read_tfds

SOURCES = ("image_folder", "tfds")


def read_classification(source: str, path: str, tfds_name: str, split: str, limit: int = 0):
    if source == "tfds":
        data = read_tfds(tfds_name, path, split)
    else:
        data = read_image_folder(path)
    return subset(data, limit)


def subset(data: LabelledImages, limit: int) -> LabelledImages:
    """`limit` images evenly spaced over the source (every class of a sorted folder
    tree is represented), or all of them (limit 0)."""
    if not limit or limit >= len(data.labels):
        return data
    keep = np.unique(np.linspace(0, len(data.labels) - 1, limit).round().astype(int))
    return LabelledImages(Subset(data.images, keep), data.labels[keep], data.folder_names)


class Subset(Sequence):
    def __init__(self, items, indices):
        self.items, self.indices = items, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.items[int(self.indices[index])]
