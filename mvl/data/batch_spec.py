"""What a training batch holds: each entry's shape and dtype for a config.

The input pipeline (mvl/data/pipeline.py) produces exactly these entries, as flat
dicts of numpy arrays; `batch_spec` states them as `jax.ShapeDtypeStruct`s so a train
step can be lowered and compiled without reading any data (mvl.compile), and tests can
check a real batch against it.
"""

from __future__ import annotations

import jax
import numpy as np

from mvl.data.bad_sample import SKIP_KINDS


def label_names(data_cfg) -> tuple[str, ...]:
    """Integer labels the config's training source adds to each row (the generated
    `shapes` data: shape and colour of the main object); real sources add none."""
    if data_cfg.source == "shapes":
        from mvl.data.shapes import ShapesSource

        return tuple(ShapesSource.labels)
    return ()


def batch_entries(cfg) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{name: (shape of one row, dtype)} of a training batch of `cfg`."""
    size, length = cfg.data.image_size, cfg.data.max_text_len
    entries = {
        "image": ((size, size, 3), np.dtype(np.float32)),  # pixels in [0, 1]
        "text": ((length,), np.dtype(np.int32)),  # [CLS] pieces [EOS] pad
        "skipped_before": ((), np.dtype(np.int32)),  # broken samples left out before this row
        "skipped_kinds": ((len(SKIP_KINDS),), np.dtype(np.int32)),  # the same, by kind
    }
    for label in label_names(cfg.data):
        entries[label] = ((), np.dtype(np.int32))
    return entries


def batch_spec(
    cfg, batch_size: int | None = None, sharding=None
) -> dict[str, jax.ShapeDtypeStruct]:
    """The global batch of `cfg` (`batch_size` rows, default cfg.batch_size) as
    ShapeDtypeStructs, each with `sharding` when given."""
    rows = cfg.batch_size if batch_size is None else batch_size
    return {
        name: jax.ShapeDtypeStruct((rows,) + row_shape, dtype, sharding=sharding)
        for name, (row_shape, dtype) in batch_entries(cfg).items()
    }
