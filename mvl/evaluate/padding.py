"""Evaluation batches of any size on any mesh.

A batch sharded over the mesh's batch axes (data x fsdp) must have a multiple of their
size in rows, and an evaluation set or `eval.batch_size` has no reason to be one. So,
as big_vision's evaluators do, each chunk of rows is padded up to that multiple (with
copies of its last row, which every tower can read: real text, a real image) and only
the real rows are kept afterwards: every per-row output (embeddings, tokens, ITM
scores, features) drops its padding before any metric sees it, so nothing divides
anything and the padding never counts.

Every process holds the whole evaluation set (mvl/evaluate/suite.py), so a chunk is
placed with `jax.make_array_from_callback`: each process hands its devices their rows
of the same global array, for any mesh layout and any process count.
"""

from __future__ import annotations

import jax
import numpy as np

from mvl.runtime import sharding


def batch_ways(mesh) -> int:
    """How many shards a batch-sharded array is split into (data x fsdp)."""
    return int(np.prod([mesh.shape[axis] for axis in sharding.BATCH_AXES]))


def padded_size(rows: int, mesh) -> int:
    """`rows` rounded up to a multiple of the mesh's batch shards (at least one shard)."""
    ways = batch_ways(mesh)
    return max(1, -(-rows // ways)) * ways


def pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """`rows` followed by copies of its last row, `size` rows in all."""
    missing = size - len(rows)
    if missing < 0:
        raise ValueError(f"{len(rows)} rows do not fit in a padded batch of {size}")
    return np.concatenate([rows, np.repeat(rows[-1:], missing, axis=0)]) if missing else rows


def place(rows: np.ndarray, array_sharding) -> jax.Array:
    """A global array of `rows` (the same numpy rows on every process) under
    `array_sharding`; each process fills only the shards of its own devices."""
    rows = np.asarray(rows)
    return jax.make_array_from_callback(rows.shape, array_sharding, lambda index: rows[index])


def chunks(rows: int, chunk: int):
    """(start, stop) of consecutive chunks of at most `chunk` rows covering `rows`."""
    return [(start, min(start + chunk, rows)) for start in range(0, rows, chunk)]
