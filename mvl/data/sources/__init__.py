"""Real-data sources named by a spec string `FORMAT:PATH` (data.source, data.eval_source,
entries of data.mixture, `--source` of the tokenizer and converter CLIs):

  csv:PATH / tsv:PATH / jsonl:PATH   table.py: rows of (image path, caption)
  webdataset:PATH                    webdataset.py: img2dataset-style tar shards
  array_record:PATH                  array_record.py: shards from `python -m mvl.data.convert`
  tfds:NAME[:VERSION]:SPLIT          tfds.py: a TFDS dataset prepared as ArrayRecord
  karpathy:FILE.json[:SPLIT+SPLIT]   karpathy.py: a Karpathy split's (image, caption) pairs

PATH may be a file, a directory (its files of the format, sorted), a glob, or several
separated by commas. Every source is random access (len, getitem -> {"image": uint8
[S, S, 3], "caption": str}, describe(index) naming the file and row / key / record).
"""

from __future__ import annotations

import dataclasses
from typing import Any

FORMATS = ("csv", "tsv", "jsonl", "webdataset", "array_record", "tfds", "karpathy")


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """The format-specific settings of data.table, data.tfds and data.index_cache_dir."""

    table_image_key: str = "filepath"
    table_caption_key: str = "title"
    # how an error names the two settings above (a command's own flags, or the config's)
    table_keys_named: str = "data.table.image_key / data.table.caption_key"
    tfds_data_dir: str = ""
    tfds_image_key: str = "image"
    tfds_caption_key: str = "caption"
    index_cache_dir: str = ""

    @classmethod
    def from_config(cls, data_cfg: Any) -> SourceOptions:
        return cls(
            table_image_key=data_cfg.table.image_key,
            table_caption_key=data_cfg.table.caption_key,
            tfds_data_dir=data_cfg.tfds.data_dir,
            tfds_image_key=data_cfg.tfds.image_key,
            tfds_caption_key=data_cfg.tfds.caption_key,
            index_cache_dir=data_cfg.index_cache_dir,
        )


DEFAULT_OPTIONS = SourceOptions()


class SpecError(ValueError):
    """A spec that names no known format (the caller names the config key)."""


def parse_spec(spec: str) -> tuple[str, str]:
    fmt, sep, path = spec.partition(":")
    if not sep or fmt not in FORMATS or not path:
        raise SpecError(
            f"{spec!r} is not FORMAT:PATH with FORMAT one of {', '.join(FORMATS)} "
            "(or a generated source such as 'shapes')"
        )
    return fmt, path


def from_spec(spec: str, image_size: int, options: SourceOptions = DEFAULT_OPTIONS) -> Any:
    fmt, path = parse_spec(spec)
    if fmt in ("csv", "tsv", "jsonl"):
        from mvl.data.sources.table import TableSource

        return TableSource(
            path,
            fmt,
            options.table_image_key,
            options.table_caption_key,
            image_size,
            options.table_keys_named,
        )
    if fmt == "webdataset":
        from mvl.data.sources.webdataset import WebDatasetSource

        return WebDatasetSource(path, image_size, options.index_cache_dir)
    if fmt == "karpathy":
        from mvl.data.sources.karpathy import KarpathySource

        return KarpathySource(path, image_size)
    if fmt == "array_record":
        from mvl.data.sources.array_record import ArrayRecordSource

        return ArrayRecordSource(path, image_size)
    from mvl.data.sources.tfds import TfdsSource

    return TfdsSource(
        path, image_size, options.tfds_data_dir, options.tfds_image_key, options.tfds_caption_key
    )
