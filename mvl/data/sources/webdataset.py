"""webdataset tar shards as img2dataset writes them (`KEY.jpg|png|webp|...` with
`KEY.txt` and/or `KEY.json`), read in any order through a per-shard index
(mvl/data/sources/tar_index.py).

The caption is `KEY.txt`, or else the "caption" field of `KEY.json`. A key with no image
member, or with neither caption member, is kept and skipped when read (counted as
missing_image / empty_caption), so the counts say what the shards lack.
"""

from __future__ import annotations

import bisect
import json
from typing import Any

from mvl.data.bad_sample import BadSample
from mvl.data.sources import paths, tar_index
from mvl.data.sources.encoded import EncodedSource


class WebDatasetSource(EncodedSource):
    def __init__(self, path: str, image_size: int, index_cache_dir: str = ""):
        self.image_size = image_size
        self.shards = paths.expand(path, ".tar", f"data source webdataset:{path}")
        self.indexes = [tar_index.load_or_build(s, index_cache_dir) for s in self.shards]
        self.starts = [0]
        for index in self.indexes:
            self.starts.append(self.starts[-1] + len(index))

    def __len__(self) -> int:
        return self.starts[-1]

    def __repr__(self) -> str:
        return f"WebDatasetSource({len(self.shards)} shards, {len(self)} samples)"

    def _locate(self, index: int) -> tuple[str, dict]:
        index = self.check_index(index)
        shard = bisect.bisect_right(self.starts, index) - 1
        return self.shards[shard], self.indexes[shard][index - self.starts[shard]]

    def describe(self, index: int) -> str:
        shard, entry = self._locate(index)
        return f"{shard} key {entry['key']}"

    def _caption(self, f, entry: dict) -> Any:
        if entry["txt"]:
            return read(f, entry["txt"], "bad_record")
        if entry["json"]:
            data = read(f, entry["json"], "bad_record")
            try:
                return json.loads(data).get("caption")
            except (ValueError, AttributeError) as e:
                raise BadSample(
                    f"{entry['key']}.json is not a JSON object ({e})", "bad_record"
                ) from None
        raise BadSample(f"no {entry['key']}.txt or .json caption", "empty_caption")

    def caption(self, index: int) -> str:
        from mvl.data import decode

        shard, entry = self._locate(index)
        with open(shard, "rb") as f:
            return decode.clean_caption(self._caption(f, entry))

    def record(self, index: int) -> tuple[bytes, Any]:
        shard, entry = self._locate(index)
        with open(shard, "rb") as f:  # one handle per read: safe under grain's threads
            caption = self._caption(f, entry)
            if not entry["image"]:
                raise BadSample(f"no image member for key {entry['key']}", "missing_image")
            return read(f, entry["image"], "truncated_image"), caption


def read(f, where: list, kind: str) -> bytes:
    """A member's bytes; a member cut short (a shard copied part-way) is a `kind` skip."""
    offset, size = where[0], where[1]
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise BadSample(f"tar member cut short ({len(data)} of {size} bytes)", kind)
    return data
