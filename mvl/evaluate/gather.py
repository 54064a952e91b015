"""Process-local eval rows -> the global eval set, in the order of the data stream.

The pipeline gives process p rows [p * b, (p + 1) * b) of every global batch of
P * b rows (mvl/data/pipeline.py: ProcessRows), so the global order is: chunk 0 of
process 0, chunk 0 of process 1, ..., chunk 1 of process 0, ... Processes may hold
different numbers of rows (the last global batch can be partial), so every gather
first learns each process's count.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils


def row_counts(local_count: int) -> np.ndarray:
    """[process_count] rows held by each process."""
    if jax.process_count() == 1:
        return np.array([local_count])
    return np.asarray(multihost_utils.process_allgather(np.array(local_count))).reshape(-1)


def chunk_rows(counts: np.ndarray, start: int, chunk: int) -> list[int]:
    """How many real rows each process has in the chunk beginning at local row `start`."""
    return [int(np.clip(count - start, 0, chunk)) for count in counts]


def in_global_order(local: np.ndarray, chunk: int) -> np.ndarray:
    """Every process's rows of `local` (chunked by `chunk` rows), in global stream order."""
    counts = row_counts(len(local))
    if len(counts) == 1:
        return local
    longest = int(counts.max())
    padded = np.concatenate([local, np.repeat(local[-1:], longest - len(local), axis=0)])
    every = np.asarray(multihost_utils.process_allgather(padded))  # [P, longest, ...]
    pieces = []
    for start in range(0, longest, chunk):
        for process, rows in enumerate(chunk_rows(counts, start, chunk)):
            pieces.append(every[process, start : start + rows])
    return np.concatenate(pieces)
