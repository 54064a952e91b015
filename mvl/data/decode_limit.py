"""The bare decode limit of this machine: how many JPEGs a plain loop turns into
image_size x image_size uint8 crops per second, on one core and on all of them.

The loop is PIL only (open, JPEG draft at a reduced scale where the target allows,
RGB, one bicubic resize of the centre square to image_size): what any input pipeline
must at least do per image, with no framework around it. `python -m mvl.bench --input`
sets mvl's grain pipeline beside it, and `python -m mvl.compile` turns the per-core rate
into the host cores a config needs (mvl/compile/decode_rate.py). Both use this module,
so they report the same number.

This module must not import jax: its worker processes are spawned and import it alone.
"""

from __future__ import annotations

import io
import multiprocessing
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

# COCO-like photos: 500 x 375 pixels, about 60 kB at JPEG quality 85.
PHOTO_WIDTH, PHOTO_HEIGHT, PHOTO_QUALITY = 500, 375, 85


def photo_like_jpeg(seed: int, width: int = PHOTO_WIDTH, height: int = PHOTO_HEIGHT) -> bytes:
    """A JPEG with a photo's mix of smooth colour fields, mid-scale texture and sensor
    noise, so it encodes to a photo's size (a flat or pure-noise image would decode
    unrealistically fast or slow)."""
    rng = np.random.default_rng(seed)

    def upsampled(rows: int, cols: int, resample) -> np.ndarray:
        small = rng.uniform(0, 255, (rows, cols, 3)).astype(np.uint8)
        return np.asarray(Image.fromarray(small).resize((width, height), resample), np.float32)

    pixels = (
        0.6 * upsampled(6, 8, Image.Resampling.BICUBIC)
        + 0.4 * upsampled(48, 64, Image.Resampling.BILINEAR)
        + rng.normal(0, 12, (height, width, 3))
    )
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=PHOTO_QUALITY
    )
    return buffer.getvalue()


def bare_decode(data: bytes, image_size: int) -> np.ndarray:
    """uint8 [image_size, image_size, 3]: the centre square of the JPEG, resized."""
    image = Image.open(io.BytesIO(data))
    # draft picks the largest JPEG scale (1/2, 1/4, 1/8) that keeps both sides >= the
    # requested size, so the shorter side never drops below image_size.
    image.draft("RGB", (image_size, image_size))
    image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    box = (left, top, left + side, top + side)
    return np.asarray(image.resize((image_size, image_size), Image.Resampling.BICUBIC, box=box))


def loop_rate(jpegs: Sequence[bytes], image_size: int, seconds: float) -> float:
    """Images/s of bare_decode over `jpegs` (cycled) in one process for `seconds`."""
    count, start = 0, time.perf_counter()
    while True:
        bare_decode(jpegs[count % len(jpegs)], image_size)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def _timed_loop(jpegs, image_size, seconds, ready, results) -> None:
    loop_rate(jpegs[:1], image_size, 0.0)  # imports and first-call costs, untimed
    ready.wait()  # every process starts its timed loop at the same moment
    results.put(loop_rate(jpegs, image_size, seconds))


def all_core_rates(
    jpegs: Sequence[bytes], image_size: int, processes: int, seconds: float
) -> list[float]:
    """Each process's images/s, `processes` loops running at once (one per core).
    Spawned, not forked: the caller may hold jax's threads, which fork would copy."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_timed_loop, args=(list(jpegs), image_size, seconds, ready, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return rates
