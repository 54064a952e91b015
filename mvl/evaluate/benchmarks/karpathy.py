"""COCO / Flickr30k retrieval images and captions from a Karpathy split file.

`dataset_coco.json` / `dataset_flickr30k.json` (Karpathy & Fei-Fei's splits, the ones
CLIP, ALBEF and CLIP_benchmark evaluate on) hold {"images": [{"filename", "filepath"
(COCO only: "val2014" / "train2014"), "split": "train" | "restval" | "val" | "test",
"sentences": [{"raw": caption}, ...]}, ...]}: COCO's test split is 5k images, Flickr30k's
1k, each with 5 captions (a few COCO images have 6 or 7; all are kept, as the references
keep them). An image is read from images_dir/filepath/filename, or images_dir/filename
when that file does not exist (Flickr30k has no filepath; some COCO copies are flat).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from mvl.data.sources.karpathy import image_candidates, load_entries
from mvl.runtime.errors import UserError


@dataclasses.dataclass(frozen=True)
class CaptionedImages:
    image_paths: list[str]  # files, or names of the images (shard and key) in `images`
    captions: list[str]
    caption_image: np.ndarray  # int [captions]: the index of each caption's image
    # the encoded images when they are not files (webdataset shards); None: image_paths
    images: Sequence | None = None


def read_karpathy_split(json_path: str, images_dir: str, split: str = "test") -> CaptionedImages:
    entries = load_entries(json_path)
    paths, captions, caption_image = [], [], []
    for number, entry in enumerate(entries):
        if entry.get("split") != split:
            continue
        where = f"{json_path}: images[{number}]"
        sentences = [s.get("raw", "").strip() for s in entry.get("sentences", ())]
        if not entry.get("filename") or not any(sentences):
            raise UserError(f"{where} has no filename or no sentences[].raw caption")
        for caption in filter(None, sentences):
            captions.append(caption)
            caption_image.append(len(paths))
        paths.append(_image_path(images_dir, entry, where))
    if not paths:
        splits = sorted({str(e.get("split")) for e in entries})
        raise UserError(f"{json_path} has no image in split {split!r} (its splits: {splits})")
    return CaptionedImages(paths, captions, np.asarray(caption_image, np.int64))


def _image_path(images_dir: str, entry: dict, where: str) -> str:
    nested, flat = image_candidates(images_dir, entry)
    for path in (nested, flat):
        if os.path.isfile(path):
            return path
    raise UserError(f"{where}: image {entry['filename']!r} is in neither {nested} nor {flat}")
