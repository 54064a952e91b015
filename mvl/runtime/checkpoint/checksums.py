"""SHA-256 of every file of a finished checkpoint, to catch files damaged after the save.

orbax's array files carry no checksum: flipped bytes in a parameter file restore
silently as wrong numbers (NaN losses a few steps later). mvl writes `MANIFEST` beside a
checkpoint's items once orbax has committed it, and verifies it before restoring.
A checkpoint without a manifest (the process died between orbax's commit and the
manifest) is complete by orbax's own commit and is restored unverified.
"""

from __future__ import annotations

import hashlib
import json
import os

MANIFEST = "mvl_sha256.json"
# orbax rewrites its step metadata (timestamps) after the manifest is written; it is
# not needed to restore the arrays.
NOT_CHECKED = {MANIFEST, "_CHECKPOINT_METADATA"}


class ChecksumMismatch(Exception):
    """A checkpoint's files differ from its manifest."""


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _files(directory: str) -> list[str]:
    found = []
    for root, _, names in os.walk(directory):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), directory)
            if relative not in NOT_CHECKED:
                found.append(relative)
    return sorted(found)


def has_manifest(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, MANIFEST))


def write_manifest(directory: str) -> None:
    manifest = {f: _digest(os.path.join(directory, f)) for f in _files(directory)}
    temporary = os.path.join(directory, MANIFEST + ".tmp")
    with open(temporary, "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
    os.replace(temporary, os.path.join(directory, MANIFEST))  # never half-written


def verify(directory: str) -> bool:
    """Raises ChecksumMismatch naming the first damaged, missing or extra file; returns
    False when there is no manifest to check against."""
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ChecksumMismatch(f"{path} is unreadable: {e}") from None
    present = set(_files(directory))  # files added later are not damage: not checked
    for name in sorted(manifest):
        if name not in present:
            raise ChecksumMismatch(f"{name} is missing")
        if _digest(os.path.join(directory, name)) != manifest[name]:
            raise ChecksumMismatch(f"{name} does not match its checksum")
    return True
