"""Where each sample's files lie inside a webdataset tar shard, so samples can be read
in any order with one seek each instead of streaming the tar.

A sample is the group of consecutive members sharing a key: the member's path up to
the first "." of its file name (webdataset's rule; img2dataset writes `KEY.jpg`,
`KEY.txt`, `KEY.json`). The index records, per key, the data offset and size of its
image, txt and json members, and is cached as JSON (beside the shard, or in
data.index_cache_dir), stamped with the shard's size and mtime so a rewritten shard is
indexed again. A shard damaged part-way is indexed up to the damage (a warning says so).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile

from mvl.runtime.errors import UserError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
INDEX_VERSION = 1


def split_key(name: str) -> tuple[str, str]:
    directory, base = os.path.split(name)
    stem, _, extension = base.partition(".")
    return os.path.join(directory, stem), extension.lower()


def build_index(tar_path: str) -> list[dict]:
    """[{"key", "image": [offset, size, ext] | None, "txt": [offset, size] | None, "json": ...}]"""
    samples: list[dict] = []
    try:
        with open_tar(tar_path) as tar:
            add_members(tar, samples)
    except (tarfile.TarError, OSError) as e:
        log.warning(
            "%s: damaged tar, indexed its first %d samples only (%s)", tar_path, len(samples), e
        )
    return samples


def open_tar(tar_path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(tar_path, "r:")  # "r:" only: seeking needs an uncompressed tar
    except (tarfile.TarError, OSError) as e:
        raise UserError(
            f"webdataset shard {tar_path} is not an uncompressed tar ({e}); random access "
            "needs plain .tar shards (img2dataset's default)"
        ) from None


def add_members(tar: tarfile.TarFile, samples: list[dict]) -> None:
    by_key: dict[str, dict] = {}
    for member in tar:
        if not member.isfile():
            continue
        key, extension = split_key(member.name)
        if key not in by_key:
            by_key[key] = {"key": key, "image": None, "txt": None, "json": None}
            samples.append(by_key[key])
        entry = by_key[key]
        where = [member.offset_data, member.size]
        if extension in IMAGE_EXTENSIONS and entry["image"] is None:
            entry["image"] = [*where, extension]
        elif extension in ("txt", "json"):
            entry[extension] = where


def index_path(tar_path: str, cache_dir: str) -> str:
    if not cache_dir:
        return tar_path + ".mvl-index.json"
    digest = hashlib.sha1(os.path.abspath(tar_path).encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"{os.path.basename(tar_path)}.{digest}.mvl-index.json")


def stamp(tar_path: str) -> dict:
    info = os.stat(tar_path)
    return {"version": INDEX_VERSION, "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def load_or_build(tar_path: str, cache_dir: str = "") -> list[dict]:
    """The shard's index, from its cache when the cache matches the shard."""
    path, current = index_path(tar_path, cache_dir), stamp(tar_path)
    try:
        with open(path) as f:
            cached = json.load(f)
        if cached.get("stamp") == current:
            return cached["samples"]
    except (OSError, ValueError):
        pass  # no cache yet, or a damaged one: rebuild
    samples = build_index(tar_path)
    save(path, {"stamp": current, "samples": samples})
    return samples


def save(path: str, index: dict) -> None:
    """Atomically, so concurrent processes indexing the same shard never read half a file;
    an unwritable place only costs re-indexing next time."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, "w") as f:
            json.dump(index, f)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("cannot cache the tar index at %s (%s); set data.index_cache_dir", path, e)
