"""How many images per second one CPU core of this machine decodes and resizes: the
bare decode loop of mvl/data/decode_limit.py (the one `python -m mvl.bench --input`
reports as the decode limit per core) on photo-sized JPEGs for about a second, to set
beside the rate a host must feed its chips."""

from __future__ import annotations

from mvl.data import decode_limit

_SAMPLES = 8  # a few different photos, so one lucky image does not set the rate


def images_per_second(image_size: int, seconds: float = 1.0) -> float:
    """One core's images/s of decode_limit.bare_decode at `image_size`."""
    jpegs = [decode_limit.photo_like_jpeg(seed) for seed in range(_SAMPLES)]
    return decode_limit.loop_rate(jpegs, image_size, seconds)
