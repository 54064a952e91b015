"""Retrieval images and captions from a table of pairs, grouped by image: a .csv with
the header `image,caption` or a .jsonl of {"image": ..., "caption": ...}, one pair a row,
an image's captions on several rows (any order). `image` is a path relative to
images_dir (or absolute). Images are numbered in order of first appearance."""

from __future__ import annotations

import csv
import json
import os

import numpy as np

from mvl.evaluate.benchmarks.karpathy import CaptionedImages
from mvl.runtime.errors import UserError


def read_caption_table(table_path: str, images_dir: str) -> CaptionedImages:
    image_index: dict[str, int] = {}
    captions, caption_image = [], []
    for row_number, image, caption in _rows(table_path):
        where = f"{table_path}: row {row_number}"
        if not isinstance(image, str) or not image or not isinstance(caption, str):
            raise UserError(f"{where} needs a non-empty 'image' path and a 'caption' string")
        if not caption.strip():
            continue
        if image not in image_index:
            path = os.path.join(images_dir, image)
            if not os.path.isfile(path):
                raise UserError(f"{where}: image {path} does not exist")
            image_index[image] = len(image_index)
        captions.append(caption.strip())
        caption_image.append(image_index[image])
    if not captions:
        raise UserError(f"{table_path} has no (image, caption) rows")
    paths = [os.path.join(images_dir, image) for image in image_index]
    return CaptionedImages(paths, captions, np.asarray(caption_image, np.int64))


def _rows(table_path: str):
    if not os.path.isfile(table_path):
        raise UserError(f"caption table {table_path!r} does not exist")
    with open(table_path, newline="") as f:
        if table_path.endswith(".jsonl"):
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise UserError(f"{table_path}: line {number} is not JSON ({e})") from None
                    yield number, row.get("image"), row.get("caption")
        elif table_path.endswith(".csv"):
            reader = csv.DictReader(f)
            if not {"image", "caption"} <= set(reader.fieldnames or ()):
                raise UserError(f"{table_path}: the header must name 'image' and 'caption'")
            for number, row in enumerate(reader, 2):
                yield number, row["image"], row["caption"]
        else:
            raise UserError(f"caption table {table_path!r}: use a .csv or .jsonl file")
