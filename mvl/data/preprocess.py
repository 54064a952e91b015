"""Per-example work of the input pipeline (mvl/data/pipeline.py): read a sample, check
it, augment its image (mvl/data/augment.py) and tokenize its caption.

A sample that cannot be read or used becomes a Skipped stand-in here (mvl/data/bad_sample.py)
instead of raising; mvl/data/skip_broken.py drops and counts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from mvl.data import augment as augment_lib
from mvl.data import decode
from mvl.data.bad_sample import BadSample, Skipped, kind_of


class TextEncoder(Protocol):
    def encode(self, texts: str, max_len: int) -> np.ndarray: ...


def check_example(example: dict[str, Any], image_size: int | None) -> str:
    """The example's caption as text; raises BadSample naming what is wrong with it."""
    image = np.asarray(example.get("image"))
    expected = (image_size, image_size, 3) if image_size else None
    if image.ndim != 3 or image.shape[-1] != 3 or (expected and image.shape != expected):
        want = expected or "(H, W, 3)"
        raise BadSample(f"image of shape {image.shape}, expected {want}", "bad_image")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise BadSample("image has NaN or infinite pixels", "bad_image")
    return decode.clean_caption(example.get("caption"))


def make_preprocess(
    tokenizer: TextEncoder,
    max_text_len: int,
    seed: int,
    augment: bool | augment_lib.Augmentation,
    image_size: int | None = None,
    labels: tuple[str, ...] = (),
) -> Callable[[tuple[int, dict[str, Any]]], dict[str, np.ndarray]]:
    """Per-example transform of (global position, example). Images leave it as uint8
    (float32 in [0, 1] after a jitter) and stack_examples makes every batch float32.

    The position is the example's place in the global (shuffled, repeated) stream, so
    the augmentation differs between epochs, is reproducible after a restore, and does
    not depend on how many processes share the stream. `augment`: an Augmentation
    (crop, flip, jitter; mvl/data/augment.py), or a bool for the jitter alone.
    `labels`: the integer labels the source provides (shapes: shape, colour).
    """
    if not isinstance(augment, augment_lib.Augmentation):
        augment = augment_lib.Augmentation(jitter=bool(augment))
    if augment.needs_whole_image and not image_size:
        raise ValueError("a random resized crop needs image_size (the size it resizes to)")
    geometric = augment.crop != "centre" or augment.flip

    def preprocess(positioned: tuple[int, dict[str, Any]]) -> dict[str, np.ndarray]:
        position, example = positioned
        # A random resized crop takes any image size; the crop makes it image_size.
        caption = check_example(example, None if augment.needs_whole_image else image_size)
        image = example["image"]
        if geometric:
            rng = augment_lib.geometry_rng(seed, position)
            image = augment_lib.geometry(np.asarray(image), augment, image_size, rng)
        image = np.asarray(image)
        if augment.jitter or image.dtype != np.uint8:
            image = to_unit_float(image)
            if augment.jitter:
                image = augment_lib.jitter(image, np.random.default_rng([seed, position]))
        # else the image stays uint8 until stack_examples scales the whole batch at once
        return {
            "image": image,
            "text": tokenizer.encode(caption, max_text_len),
            **{label: np.asarray(example[label], np.int32) for label in labels},
        }

    return preprocess


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1] from uint8 pixels (other dtypes are taken as 0..255 values)."""
    return np.asarray(image, np.float32) * np.float32(1 / 255)


def stack_examples(examples: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """A batch of preprocessed examples, images as float32 in [0, 1]. uint8 images are
    stacked first and scaled in one op (a quarter of the bytes to copy, and no per-image
    float arrays); the result equals scaling each image alone, to the bit."""
    batch = {key: np.stack([e[key] for e in examples]) for key in examples[0] if key != "image"}
    images = [e["image"] for e in examples]
    if all(image.dtype == np.uint8 for image in images):
        batch["image"] = to_unit_float(np.stack(images))
    else:
        batch["image"] = np.stack(
            [image if image.dtype == np.float32 else to_unit_float(image) for image in images]
        )
    return batch


def make_read_and_preprocess(source: Any, preprocess: Callable) -> Callable:
    """(global position, source index) -> preprocessed example, or Skipped when the
    source cannot read it or `preprocess` rejects it (any exception: a sample must not
    stop a run; the consecutive-skip limit catches a pipeline that rejects everything)."""
    describe = getattr(source, "describe", lambda index: f"sample {index} of {source!r:.80}")

    def read_and_preprocess(positioned: tuple[int, int]):
        position, index = positioned
        try:
            return preprocess((position, source[index]))
        except Exception as e:  # noqa: BLE001 -- reported and counted, see above
            return Skipped(describe(index), f"{type(e).__name__}: {e}", kind_of(e))

    return read_and_preprocess
