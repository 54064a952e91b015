"""Which files a source spec's PATH names: one file, a directory (its files with the
format's extension, sorted), a glob, or several of these separated by commas."""

from __future__ import annotations

import glob
import os

from mvl.runtime.errors import UserError


def expand(path: str, extension: str, what: str) -> list[str]:
    files: list[str] = []
    for part in filter(None, (p.strip() for p in path.split(","))):
        if os.path.isdir(part):
            found = sorted(glob.glob(os.path.join(part, f"*{extension}")))
        elif any(c in part for c in "*?["):
            found = sorted(glob.glob(part))
        else:
            found = [part] if os.path.isfile(part) else []
        if not found:
            raise UserError(f"{what}: no {extension} files at {part!r}")
        files.extend(found)
    if not files:
        raise UserError(f"{what}: empty path")
    return files
