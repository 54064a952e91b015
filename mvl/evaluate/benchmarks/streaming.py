"""A benchmark's images decoded and embedded a chunk at a time, so 50k ImageNet images
never sit in memory as pixels: each chunk is decoded on threads (Pillow releases the
GIL while decoding), resized / centre-cropped as the training data is
(mvl/data/decode.py), scaled to [0, 1], embedded on the mesh (the Embedder pads each
batch to the mesh), and only its embeddings are kept. A progress line with the rate
and an ETA is printed after every chunk."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import time

import numpy as np

from mvl.data.bad_sample import BadSample
from mvl.data.decode import decode_image
from mvl.runtime.errors import UserError


def decode_chunk(images, indices, image_size: int, pool, where: str) -> np.ndarray:
    """float32 [len(indices), size, size, 3] in [0, 1]; an unreadable image is a
    UserError naming it (a benchmark must score every image)."""

    def one(index):
        try:
            return decode_image(images[index], image_size)
        except (BadSample, OSError) as e:
            name = getattr(images, "paths", None)
            raise UserError(
                f"{where}: image {name[index] if name else index} cannot be read ({e})"
            ) from None

    pixels = np.stack(list(pool.map(one, indices)))
    return pixels.astype(np.float32) * np.float32(1 / 255)


def embed_all(embed, images, image_size: int, chunk_rows: int, where: str):
    """`embed(pixels)` of every image, in order, with a progress line per chunk; an
    `embed` returning a tuple of arrays (e.g. embeddings and tokens) gets a tuple."""
    total, pieces, start_time = len(images), [], time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, total, chunk_rows):
            indices = range(start, min(start + chunk_rows, total))
            outputs = embed(decode_chunk(images, indices, image_size, pool, where))
            pieces.append(tuple(map(np.asarray, outputs)) if isinstance(outputs, tuple)
                          else np.asarray(outputs))  # fmt: skip
            report(where, indices.stop, total, time.monotonic() - start_time)
    if isinstance(pieces[0], tuple):
        return tuple(np.concatenate(column) for column in zip(*pieces))
    return np.concatenate(pieces)


def report(where: str, done: int, total: int, elapsed: float):
    rate = done / max(elapsed, 1e-9)
    eta = (total - done) / rate
    print(
        f"{where}: {done}/{total} images | {rate:.1f} images/s | "
        f"ETA {int(eta // 60)}m{int(eta % 60):02d}s",
        file=sys.stderr,
        flush=True,
    )
