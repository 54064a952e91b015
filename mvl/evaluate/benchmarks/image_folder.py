"""Classification images from a folder tree, root/<class>/<image> (torchvision's
ImageFolder layout, which ImageNet's val set is usually sorted into): classes are the
sub-folders in sorted order, label i = the i-th folder, as ImageFolder numbers them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from mvl.runtime.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    images: Sequence  # images[i]: encoded bytes or a pixel array
    labels: np.ndarray  # int [images]
    folder_names: tuple[str, ...]  # the source's own name of each class (may be ids)


class ImageFiles(Sequence):
    """Reads each image's bytes when asked (nothing is held in memory)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with open(self.paths[index], "rb") as f:
            return f.read()


def read_image_folder(root: str) -> LabelledImages:
    if not os.path.isdir(root):
        raise UserError(f"image folder {root!r} does not exist (expected root/<class>/<image>)")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, file))
                labels.append(label)
    if not paths:
        raise UserError(f"image folder {root!r} has no images in root/<class>/<image> layout")
    return LabelledImages(ImageFiles(paths), np.asarray(labels, np.int64), tuple(classes))
