"""Robust decoding of real images and captions into what the model trains on.

Images (encoded bytes, or numpy arrays from a source that stores pixels):
- Any mode Pillow reads becomes 8-bit RGB: grayscale, bilevel, palette and CMYK through
  Pillow's conversions; 16-bit and 32-bit integer images ("I;16", "I") are scaled down
  from the 16-bit range (value / 257); images with transparency (RGBA, LA, palette with
  a transparent colour) are composited on WHITE, as web images with alpha are mostly
  logos and products meant for a white page.
- EXIF orientation is applied, so photos stand the right way up.
- Resized so the shorter side is `image_size`, then the centre square is kept (one
  bicubic resize of the centre crop: no intermediate giant image for panoramas). Smaller
  images, even ones below the patch size, are upscaled the same way. With image_size 0
  the whole image is kept at its own size: training sources are built that way for a
  random resized crop (data.crop), which mvl/data/augment.py then takes and resizes.
- Skipped (BadSample, counted by kind): empty or unidentifiable bytes (`not_an_image`),
  truncated or corrupt data (`truncated_image`), more than MAX_IMAGE_PIXELS pixels
  (`huge_image`: a decompression bomb or a scan, not a training photo).

Captions: bytes must be UTF-8 (`caption_not_utf8` otherwise, also for text that was
read with surrogate escapes); whitespace runs become one space; empty captions are
skipped (`empty_caption`); captions longer than MAX_CAPTION_CHARS characters are cut at
the last space before it (the tokenizer keeps only data.max_text_len pieces anyway, so
this only bounds the tokenizer's work).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mvl.data.bad_sample import BadSample

MAX_CAPTION_CHARS = 1000
MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000
ALPHA_BACKGROUND = (255, 255, 255)  # white
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def clean_caption(raw: Any) -> str:
    """The caption as one line of text; raises BadSample if it is empty or not UTF-8."""
    if isinstance(raw, (list, tuple, np.ndarray)) and not isinstance(raw, (str, bytes)):
        raw = raw[0] if len(raw) else None  # a feature with several captions: the first
    if isinstance(raw, (bytes, np.bytes_)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadSample(
                f"caption is not UTF-8 ({e.reason} at byte {e.start})", "caption_not_utf8"
            ) from None
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes read with surrogateescape
            raise BadSample(
                "caption is not UTF-8 (undecodable bytes)", "caption_not_utf8"
            ) from None
    if not isinstance(raw, str) or not raw.strip():
        raise BadSample(f"caption is empty or not text: {raw!r:.60}", "empty_caption")
    text = " ".join(raw.split())
    if len(text) > MAX_CAPTION_CHARS:
        cut = text[:MAX_CAPTION_CHARS]
        text = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return text


def open_image(value: Any) -> Image.Image:
    """A loaded Pillow image from encoded bytes or a pixel array; BadSample if unusable."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return image_from_array(value)
    data = bytes(value) if value is not None else b""
    if not data:
        raise BadSample("image bytes are empty", "not_an_image")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadSample(
            f"not an image Pillow can read ({len(data)} bytes)", "not_an_image"
        ) from None
    except Image.DecompressionBombError as e:
        raise BadSample(str(e), "huge_image") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise BadSample(
            f"image of {width}x{height} pixels is over decode.MAX_IMAGE_PIXELS", "huge_image"
        )
    return image


def image_from_array(pixels: np.ndarray) -> Image.Image:
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] not in (3, 4)):
        raise BadSample(f"image array of shape {pixels.shape}", "bad_image")
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise BadSample("image has NaN or infinite pixels", "bad_image")
    if pixels.dtype == np.uint16:
        pixels = pixels / 257.0
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; alpha composited on ALPHA_BACKGROUND, 16-bit scaled down."""
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, np.float64) / 257.0
        image = Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
    has_alpha = "A" in image.getbands() or "a" in image.getbands()
    if has_alpha or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # convert() copies even an RGB image; a decoded JPEG is mostly RGB already.
    return image if image.mode == "RGB" else image.convert("RGB")


def resize_centre_crop(image: Image.Image, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: the centre square, resized (up or down) to `size`."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    box = (left, top, left + side, top + side)
    resized = image.resize((size, size), Image.Resampling.BICUBIC, box=box)
    return np.asarray(resized, np.uint8)


def decode_image(value: Any, image_size: int) -> np.ndarray:
    """uint8 [image_size, image_size, 3] from encoded bytes or an array (rules above)."""
    image = open_image(value)
    if image_size and image.format == "JPEG":
        image.draft(image.mode, (image_size, image_size))  # decode at a reduced scale
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = to_rgb(image)
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for damaged data
        raise BadSample(f"image data is truncated or corrupt ({e})", "truncated_image") from None
    if not image_size:
        return np.asarray(rgb, np.uint8)
    return resize_centre_crop(rgb, image_size)
