"""ArrayRecord shards written by `python -m mvl.data.convert`, read with grain's
ArrayRecordDataSource.

Record format (one record per sample, no pickle): a msgpack map
  {"format": "mvl.image_caption.v1", "image": <encoded image bytes, as stored in the
   original source>, "caption": <UTF-8 str>, "key": <where the sample came from>}
Any language with msgpack reads it; images keep their original encoding (JPEG, PNG,
...) and are decoded at training time by mvl/data/decode.py.
"""

from __future__ import annotations

from typing import Any

import msgpack

from mvl.data.bad_sample import BadSample
from mvl.data.sources import paths
from mvl.data.sources.encoded import EncodedSource

RECORD_FORMAT = "mvl.image_caption.v1"
EXTENSION = ".array_record"
# group_size:1 makes every record its own chunk: random reads decompress one record.
WRITER_OPTIONS = "group_size:1"


def pack(image: bytes, caption: str, key: str) -> bytes:
    return msgpack.packb(
        {"format": RECORD_FORMAT, "image": image, "caption": caption, "key": key},
        use_bin_type=True,
    )


def unpack(record: bytes) -> dict:
    try:
        fields = msgpack.unpackb(record, raw=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise BadSample(f"not an mvl record ({e!r:.80})", "bad_record") from None
    if not isinstance(fields, dict) or fields.get("format") != RECORD_FORMAT:
        raise BadSample(f"not an {RECORD_FORMAT} record", "bad_record")
    return fields


def record_counts(files: list[str]) -> list[int]:
    from array_record.python.array_record_module import ArrayRecordReader

    counts = []
    for path in files:
        reader = ArrayRecordReader(path)
        counts.append(reader.num_records())
        reader.close()
    return counts


class ArrayRecordSource(EncodedSource):
    def __init__(self, path: str, image_size: int):
        import grain

        self.image_size = image_size
        self.files = paths.expand(path, EXTENSION, f"data source array_record:{path}")
        self.counts = record_counts(self.files)
        self._source = grain.sources.ArrayRecordDataSource(self.files)

    def __len__(self) -> int:
        return len(self._source)

    def __repr__(self) -> str:
        return f"ArrayRecordSource({len(self.files)} files, {len(self)} records)"

    def describe(self, index: int) -> str:
        local = int(index)
        for path, count in zip(self.files, self.counts):
            if local < count:
                try:
                    key = f" ({unpack(self._source[int(index)])['key']})"
                except Exception:  # noqa: BLE001 -- describing a broken record must not fail
                    key = ""
                return f"{path} record {local}{key}"
            local -= count
        return f"record {index} past the end of {self!r}"

    def record(self, index: int) -> tuple[bytes, Any]:
        fields = unpack(self._source[self.check_index(index)])
        return fields.get("image"), fields.get("caption")
