"""CSV / TSV / JSONL files of (image path, caption) rows, as open_clip's CsvDataset reads
them: columns `filepath` and `title` by default (data.table.image_key / caption_key).

Image paths are relative to the table file's directory (absolute paths are kept). All
rows are read into memory when the source is built (about 100 bytes a row). A row that
cannot be parsed, or whose caption bytes are not UTF-8, stays in the table and is
skipped (and counted) when it is read, so one bad line does not stop a run.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

from mvl.data.bad_sample import BadSample
from mvl.data.sources.encoded import EncodedSource
from mvl.runtime.errors import UserError

DELIMITERS = {"csv": ",", "tsv": "\t"}
MAX_FIELD_BYTES = 1 << 26


class TableSource(EncodedSource):
    def __init__(
        self,
        path: str,
        fmt: str,
        image_key: str,
        caption_key: str,
        image_size: int,
        keys_named: str = "data.table.image_key / data.table.caption_key",
    ):
        if fmt not in ("csv", "tsv", "jsonl"):
            raise ValueError(f"unknown table format {fmt!r}")
        self.path, self.fmt, self.image_size = path, fmt, image_size
        self.image_key, self.caption_key = image_key, caption_key
        self.keys_named = keys_named
        self.root = os.path.dirname(os.path.abspath(path))
        try:
            # surrogateescape: a non-UTF-8 caption becomes one broken row, not a crash.
            with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
                self.rows = self._jsonl(f) if fmt == "jsonl" else self._delimited(f)
        except OSError as e:
            raise UserError(f"data source {fmt}:{path}: cannot read it ({e.strerror})") from None

    def _delimited(self, f) -> list[tuple[Any, Any, int]]:
        # csv's default field limit (128 KiB) would make one enormous caption fail the
        # whole file; decode.clean_caption truncates it instead.
        csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_BYTES))
        reader = csv.DictReader(f, delimiter=DELIMITERS[self.fmt])
        missing = [
            k for k in (self.image_key, self.caption_key) if k not in (reader.fieldnames or [])
        ]
        if missing:
            raise UserError(
                f"{self.path}: no column {missing[0]!r} (columns: {reader.fieldnames}); set "
                f"{self.keys_named} to its column names"
            )
        # Line numbers (header = line 1) so a skipped row can be found in the file.
        return [(row[self.image_key], row[self.caption_key], reader.line_num) for row in reader]

    def _jsonl(self, f) -> list[tuple[Any, Any, int]]:
        rows = []
        for line_num, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((row[self.image_key], row.get(self.caption_key), line_num))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                rows.append(
                    (None, BadSample(f"unparseable row ({e!r:.80})", "bad_record"), line_num)
                )
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"TableSource({self.fmt}:{self.path}, {len(self)} rows)"

    def describe(self, index: int) -> str:
        image, _, line = self.rows[index]
        return f"{self.path} line {line} (image {image!r:.100})"

    def _row(self, index: int) -> tuple[Any, Any]:
        image, caption, _ = self.rows[self.check_index(index)]
        if isinstance(caption, BadSample):
            raise caption
        return image, caption

    def caption(self, index: int) -> str:
        from mvl.data import decode

        return decode.clean_caption(self._row(index)[1])

    def record(self, index: int) -> tuple[bytes, Any]:
        image, caption = self._row(index)
        if not isinstance(image, str) or not image:
            raise BadSample(f"no image path in column {self.image_key!r}", "missing_image")
        path = os.path.join(self.root, image)
        try:
            with open(path, "rb") as f:
                return f.read(), caption
        except FileNotFoundError:
            raise BadSample(f"image file {path} does not exist", "missing_image") from None
