"""A JSON record a run keeps beside its checkpoints (the run's config, a table's run
records): written by process 0 only, since every process of a pod runs the same
command, and atomically (a temporary file renamed over the old one), so a run killed
mid-write leaves the previous record whole."""

from __future__ import annotations

import json
import os


def write(path: str, value: dict):
    import jax

    if jax.process_index() != 0:
        return
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
    os.replace(temporary, path)
