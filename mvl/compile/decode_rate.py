"""How many images per second one CPU core of this machine decodes and resizes, with
the input pipeline's own decoder (mvl/data/decode.py: JPEG -> RGB -> centre crop resized):
measured for about a second, to set beside the rate a host must feed its chips."""

from __future__ import annotations

import io
import time

import numpy as np


def _sample_jpeg(width: int = 500, height: int = 375) -> bytes:
    """A photo-sized JPEG with some texture (a flat image would decode unrealistically fast)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 0.5, y * 0.6, (x + y) * 0.3], -1) % 256
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def images_per_second(image_size: int, seconds: float = 1.0) -> float:
    """mvl/data/decode.py's decode_image on one JPEG, repeated for `seconds`."""
    from mvl.data import decode

    data = _sample_jpeg()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        decode.decode_image(data, image_size)
        count += 1
    return count / (time.perf_counter() - start)
