"""Classification images from a prepared tfds dataset (imagenet2012, imagenet_v2,
cifar10, cifar100, ...) through `tfds.data_source`: random access to the
array_record files already in `data_dir`; nothing is downloaded (download=False).
The image and label features are named `image_key` / `label_key`; the label feature's
own names are the class names when the evaluator is given none."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mvl.evaluate.benchmarks.image_folder import LabelledImages
from mvl.runtime.errors import UserError


class FeatureColumn(Sequence):
    def __init__(self, source, key: str):
        self.source, self.key = source, key

    def __len__(self):
        return len(self.source)

    def __getitem__(self, index):
        return self.source[index][self.key]


def read_tfds(
    name: str, data_dir: str, split: str, image_key: str = "image", label_key: str = "label"
) -> LabelledImages:
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError(
            f"reading tfds dataset {name!r} needs tensorflow-datasets: pip install "
            "tensorflow-datasets (or use an image folder: source='image_folder')"
        ) from None
    where = f"tfds dataset {name!r} split {split!r} in {data_dir or 'the default data_dir'}"
    try:
        builder = tfds.builder(name, data_dir=data_dir or None)
        # Images stay encoded (decoded later at the model's size, like every source);
        # reading the labels then costs no image decoding.
        source = tfds.data_source(
            name,
            split=split,
            data_dir=data_dir or None,
            download=False,
            decoders={image_key: tfds.decode.SkipDecoding()},
        )
    except Exception as e:  # noqa: BLE001 (tfds raises many types for a missing dataset)
        raise UserError(f"{where} cannot be read ({type(e).__name__}: {e})") from None
    features = builder.info.features
    for key in (image_key, label_key):
        if key not in features:
            raise UserError(f"{where} has no feature {key!r} (it has {', '.join(features)})")
    labels = np.asarray([source[i][label_key] for i in range(len(source))], np.int64)
    names = tuple(getattr(features[label_key], "names", ()) or ())
    return LabelledImages(FeatureColumn(source, image_key), labels, names)
