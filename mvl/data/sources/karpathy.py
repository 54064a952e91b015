"""Training pairs from a Karpathy split file (`dataset_coco.json` /
`dataset_flickr30k.json`): every caption of every image of the chosen splits is one
example, as ALBEF / MaskVLM fine-tune retrieval.

  karpathy:/data/coco/dataset_coco.json:train+restval     (COCO's 113k training images)
  karpathy:/data/f30k/dataset_flickr30k.json               (split "train" by default)

Images are read from the JSON's folder: FOLDER/filepath/filename or FOLDER/filename (the
layouts the retrieval benchmark reads, mvl/evaluate/benchmarks/karpathy.py). An image
that is not there is skipped and counted (missing_image) when read, as any source's.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mvl.data.bad_sample import BadSample
from mvl.data.sources.encoded import EncodedSource
from mvl.runtime.errors import UserError


def split_spec(path: str) -> tuple[str, tuple[str, ...]]:
    """'FILE.json[:SPLIT+SPLIT]' -> (FILE.json, splits); default ('train',)."""
    if path.endswith(".json"):
        return path, ("train",)
    json_path, _, splits = path.rpartition(":")
    if not json_path.endswith(".json") or not splits:
        raise UserError(
            f"data source karpathy:{path}: write karpathy:FILE.json or "
            "karpathy:FILE.json:SPLIT[+SPLIT] (e.g. train+restval)"
        )
    return json_path, tuple(splits.split("+"))


def load_entries(json_path: str) -> list[dict]:
    if not os.path.isfile(json_path):
        raise UserError(f"Karpathy split file {json_path!r} does not exist")
    try:
        with open(json_path) as f:
            entries = json.load(f).get("images")
    except (json.JSONDecodeError, AttributeError) as e:
        raise UserError(f"{json_path} is not a Karpathy split JSON ({e})") from None
    if not isinstance(entries, list):
        raise UserError(f"{json_path} has no 'images' list (a Karpathy split JSON has one)")
    return entries


def image_candidates(images_dir: str, entry: dict) -> tuple[str, str]:
    """Where an entry's image may be: images_dir/filepath/filename, images_dir/filename."""
    nested = os.path.join(images_dir, entry.get("filepath", ""), entry["filename"])
    return nested, os.path.join(images_dir, entry["filename"])


class KarpathySource(EncodedSource):
    def __init__(self, path: str, image_size: int):
        self.image_size = image_size
        self.json_path, self.splits = split_spec(path)
        self.images_dir = os.path.dirname(os.path.abspath(self.json_path))
        entries = load_entries(self.json_path)
        self.entries, self.pairs = [], []  # pairs: (entry index, caption)
        for entry in entries:
            if entry.get("split") not in self.splits or not entry.get("filename"):
                continue
            for sentence in entry.get("sentences", ()):
                self.pairs.append((len(self.entries), sentence.get("raw", "")))
            self.entries.append(entry)
        if not self.pairs:
            found = sorted({str(e.get("split")) for e in entries})
            raise UserError(
                f"data source karpathy:{path}: no captioned image in splits "
                f"{'+'.join(self.splits)} (the file's splits: {found})"
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        return (
            f"KarpathySource({self.json_path}, {'+'.join(self.splits)}: "
            f"{len(self.entries)} images, {len(self.pairs)} captions)"
        )

    def describe(self, index: int) -> str:
        entry = self.entries[self.pairs[self.check_index(index)][0]]
        return f"{self.json_path} image {entry['filename']} caption {index}"

    def record(self, index: int) -> tuple[bytes, Any]:
        entry_index, caption = self.pairs[self.check_index(index)]
        for path in image_candidates(self.images_dir, self.entries[entry_index]):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    return f.read(), caption
        name = self.entries[entry_index]["filename"]
        raise BadSample(f"image {name} is not in {self.images_dir}", "missing_image")
