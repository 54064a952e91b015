"""Training-image augmentation: random resized crop, horizontal flip, photometric jitter.

The config's `data.crop`, `data.crop_scale`, `data.crop_ratio`, `data.flip` and
`data.augment` (mvl/config/data_section.py) choose what a training image goes through; held-out
images are never augmented (the centre crop only).

- crop="centre": the source already resized the shorter side to `image_size` and kept
  the centre square (mvl/data/decode.py); nothing more happens here.
- crop="random_resized": the source hands over the whole decoded image and a box is
  drawn here as Inception / torchvision's RandomResizedCrop draws it: an area of
  uniform(crop_scale) x the image's area and an aspect ratio log-uniform in crop_ratio,
  at a uniform position; ten draws that do not fit fall back to the largest centred box
  whose aspect is within crop_ratio. The box has sub-pixel corners (Pillow resizes from
  a float box), so the area fraction and the aspect are exactly the drawn ones.
- flip: left-right with probability 1/2.
- augment (jitter): mvl's light brightness / contrast change (see `jitter`).

Every random choice comes from a generator seeded with (seed, position of the example in
the global stream, which choice): the same example at the same step gets the same crop
after a restore, on any number of processes, and the crop's stream is independent of
the jitter's (so turning one on does not change the other's draws).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from PIL import Image

CROPS = ("centre", "random_resized")
# Independent random streams per example: (seed, position, stream).
_GEOMETRY_STREAM = 1
_TRIES = 10  # draws before the fallback box, as torchvision does


@dataclasses.dataclass(frozen=True)
class Augmentation:
    crop: str = "centre"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False
    jitter: bool = False

    @classmethod
    def from_config(cls, data_cfg: Any) -> Augmentation:
        """The training augmentation a config's `data` section asks for (configs saved
        before the crop / flip keys existed get the centre crop and no flip)."""
        return cls(
            crop=data_cfg.get("crop", "centre"),
            scale=tuple(data_cfg.get("crop_scale", (0.08, 1.0))),
            ratio=tuple(data_cfg.get("crop_ratio", (3 / 4, 4 / 3))),
            flip=bool(data_cfg.get("flip", False)),
            jitter=bool(data_cfg.get("augment", False)),
        )

    @property
    def needs_whole_image(self) -> bool:
        """Whether the source must decode the whole image (not the centre square)."""
        return self.crop == "random_resized"


def geometry_rng(seed: int, position: int) -> np.random.Generator:
    return np.random.default_rng([seed, position, _GEOMETRY_STREAM])


def random_resized_box(
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of a box of area fraction in `scale` and aspect
    (width / height) in `ratio`, inside a width x height image."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(_TRIES):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w, h = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if w <= width and h <= height:
            left = rng.uniform(0.0, width - w)
            top = rng.uniform(0.0, height - h)
            return left, top, left + w, top + h
    # Fallback: the largest centred box with an aspect ratio in range.
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w, h = (width, width / aspect) if width / height < aspect else (height * aspect, height)
    left, top = (width - w) / 2, (height - h) / 2
    return left, top, left + w, top + h


def crop_resize(image: np.ndarray, box, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: `box` of `image` resized (bicubic) to size x size."""
    resized = Image.fromarray(as_uint8(image)).resize(
        (size, size), Image.Resampling.BICUBIC, box=tuple(float(v) for v in box)
    )
    return np.asarray(resized, np.uint8)


def as_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def geometry(image: np.ndarray, aug: Augmentation, image_size: int, rng) -> np.ndarray:
    """The crop and flip of one training image ([H, W, 3] -> [image_size, image_size, 3])."""
    if aug.crop == "random_resized":
        height, width = image.shape[:2]
        box = random_resized_box(width, height, aug.scale, aug.ratio, rng)
        image = crop_resize(image, box, image_size)
    if aug.flip and rng.random() < 0.5:
        image = image[:, ::-1]
    return image


def jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light brightness/contrast jitter of a float [0, 1] image. No geometry: the
    `shapes` captions name left/right and positions, which a flip or crop would break."""
    contrast, brightness = rng.uniform([0.8, -0.08], [1.2, 0.08]).astype(np.float32)
    # Contrast around the overall grey level: hues stay put, so colour words stay true.
    mean = image.mean(dtype=np.float32)
    return np.clip((image - mean) * contrast + (mean + brightness), 0.0, 1.0)


def validate(cfg) -> None:
    """The crop keys' rules (.get: configs saved before they existed)."""
    from mvl.config import ConfigError

    d = cfg.data
    crop = d.get("crop", "centre")
    if crop not in CROPS:
        raise ConfigError(f"config data.crop={crop!r}: must be one of {', '.join(CROPS)}")
    low, high = tuple(d.get("crop_scale", (0.08, 1.0)))
    if not 0 < low <= high <= 1:
        raise ConfigError(
            f"config data.crop_scale={(low, high)!r}: must be (low, high) with "
            "0 < low <= high <= 1"
        )
    low, high = tuple(d.get("crop_ratio", (0.75, 4 / 3)))
    if not 0 < low <= high:
        raise ConfigError(
            f"config data.crop_ratio={(low, high)!r}: must be (low, high) with 0 < low <= high"
        )
