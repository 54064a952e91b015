"""Retrieval images and captions from webdataset shards of (image, caption) pairs, as
img2dataset writes a captioned set (`KEY.jpg` + `KEY.txt` / `KEY.json`, one pair per
key, an image repeated for each of its captions).

Pairs are grouped into images by the `image_id_field` of `KEY.json` when the shards
carry one (img2dataset keeps the input table's extra columns there, e.g. COCO's
image_id), otherwise by the image's bytes (the same encoded image = the same image).
Images are numbered in order of first appearance and read back from the shards when
embedded (nothing is held in memory but the captions).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from mvl.data.bad_sample import BadSample
from mvl.data.decode import clean_caption
from mvl.data.sources.webdataset import WebDatasetSource, read
from mvl.evaluate.benchmarks.karpathy import CaptionedImages
from mvl.runtime.errors import UserError


class ShardImages(Sequence):
    """The encoded image of chosen samples of a webdataset, read when asked."""

    def __init__(self, source: WebDatasetSource, samples: list[int]):
        self.source, self.samples = source, samples
        self.paths = [source.describe(i) for i in samples]  # names errors

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ShardImages(self.source, self.samples[index])
        return self.source.record(self.samples[index])[0]


def read_webdataset_pairs(path: str, image_id_field: str = "image_id") -> CaptionedImages:
    source = WebDatasetSource(path, image_size=0)
    image_index: dict[str, int] = {}
    first_sample, captions, caption_image = [], [], []
    for sample in range(len(source)):
        where = f"webdataset {source.describe(sample)}"
        try:
            image, caption = source.record(sample)
        except BadSample as e:
            raise UserError(f"{where}: {e} (a benchmark must score every pair)") from None
        caption = clean_caption(caption)
        if not caption:
            continue
        image_id = _image_id(source, sample, image, image_id_field)
        if image_id not in image_index:
            image_index[image_id] = len(image_index)
            first_sample.append(sample)
        captions.append(caption)
        caption_image.append(image_index[image_id])
    if not captions:
        raise UserError(f"webdataset {path!r} has no (image, caption) pairs")
    images = ShardImages(source, first_sample)
    return CaptionedImages(images.paths, captions, np.asarray(caption_image, np.int64), images)


def _image_id(source: WebDatasetSource, sample: int, image: bytes, field: str) -> str:
    shard, entry = source._locate(sample)
    if entry["json"] and field:
        with open(shard, "rb") as f:
            try:
                meta = json.loads(read(f, entry["json"], "bad_record"))
            except (ValueError, BadSample):
                meta = None
        if isinstance(meta, dict) and meta.get(field) is not None:
            return f"id:{meta[field]}"
    return "sha1:" + hashlib.sha1(image).hexdigest()
