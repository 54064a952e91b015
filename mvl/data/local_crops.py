"""Multi-crop local views (SILC / DINO): small random boxes of each training image, cut
out on the device inside the train step.

The config's `data.local_crops` section says how many views per image (`count`), the
share of the image's area each box covers (`scale`, uniform) and its aspect (`ratio`,
log-uniform), as RandomResizedCrop draws them. The boxes come from the step's key
(fold_in(state.rng, state.step)), so a resumed run cuts exactly the crops an
uninterrupted one does. Each box is resized to `size` pixels a side (0: the training
image's size). DINO and SILC feed small local crops (96 px beside 224 px global views);
the image tower reads a smaller crop through its position table resized to the crop's
patch grid (mvl/models/positions.py), so `size` must be a multiple of the patch size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.config import ConfigError


def sample_boxes(rng, batch: int, count: int, scale, ratio):
    """[batch, count, 4] boxes (top, left, height, width) as fractions of the image side.

    The area fraction h * w is uniform in `scale`; the aspect w / h is log-uniform in
    `ratio`, narrowed to [area, 1 / area] so both sides fit in the image (the area is
    then exactly the drawn one); the position is uniform among those that fit."""
    area_rng, ratio_rng, top_rng, left_rng = jax.random.split(rng, 4)
    shape = (batch, count)
    area = jax.random.uniform(area_rng, shape, minval=scale[0], maxval=scale[1])
    low = jnp.maximum(jnp.log(ratio[0]), jnp.log(area))
    high = jnp.minimum(jnp.log(ratio[1]), -jnp.log(area))
    aspect = jnp.exp(low + (high - low) * jax.random.uniform(ratio_rng, shape))
    height = jnp.minimum(jnp.sqrt(area / aspect), 1.0)
    width = jnp.minimum(jnp.sqrt(area * aspect), 1.0)
    top = jax.random.uniform(top_rng, shape) * (1.0 - height)
    left = jax.random.uniform(left_rng, shape) * (1.0 - width)
    return jnp.stack([top, left, height, width], axis=-1)


def crop_and_resize(images, boxes, size: int):
    """images [B, H, W, C], boxes [B, K, 4] -> crops [B, K, size, size, C] (bilinear,
    antialiased when shrinking)."""
    height, width = images.shape[1:3]

    def one(image, box):
        top, left, box_h, box_w = box[0] * height, box[1] * width, box[2] * height, box[3] * width
        scale = jnp.stack([size / box_h, size / box_w])
        translation = -jnp.stack([top, left]) * scale
        return jax.image.scale_and_translate(
            image, (size, size, image.shape[-1]), (0, 1), scale, translation, "linear"
        )

    per_image = jax.vmap(one, in_axes=(None, 0))
    return jax.vmap(per_image)(images, boxes)


def view_size(section, image_size: int) -> int:
    """The side of each local view in pixels: `section.size`, or the image's when 0."""
    return section.get("size", 0) or image_size


def local_views(rng, images, section):
    """[B * K, size, size, C] local views of `images` (image-major: rows b*K .. b*K+K-1
    are image b's), `size` as view_size says."""
    size = view_size(section, images.shape[1])
    boxes = sample_boxes(rng, images.shape[0], section.count, section.scale, section.ratio)
    crops = crop_and_resize(images, boxes, size)
    return crops.reshape((-1,) + crops.shape[2:])


def validate(cfg) -> None:
    """data.local_crops: a positive count, a scale range within (0, 1], a ratio range, a
    view size (0, or a multiple of the patch size no larger than the image)."""
    section = cfg.data.get("local_crops")
    if section is None:
        raise ConfigError(
            "config data.local_crops is missing: objectives.self_distill needs it "
            "(dict(count=..., scale=(low, high), ratio=(low, high)))"
        )
    count, scale, ratio = section.count, tuple(section.scale), tuple(section.ratio)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"config data.local_crops.count={count!r}: must be an int >= 1")
    if len(scale) != 2 or not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ConfigError(
            f"config data.local_crops.scale={scale!r}: must be (low, high), 0 < low <= high <= 1"
        )
    if len(ratio) != 2 or not 0.0 < ratio[0] <= 1.0 <= ratio[1]:
        raise ConfigError(
            f"config data.local_crops.ratio={ratio!r}: must be (low, high), 0 < low <= 1 <= high"
        )
    _validate_size(cfg, section.get("size", 0))


def _validate_size(cfg, size) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ConfigError(f"config data.local_crops.size={size!r}: must be an int >= 0")
    model = cfg.get("model")
    if not size or model is None:
        return
    patch, image = model.image.patch_size, cfg.data.image_size
    if size % patch or size > image:
        raise ConfigError(
            f"config data.local_crops.size={size}: must be a multiple of "
            f"model.image.patch_size={patch} and at most data.image_size={image} "
            "(0: the image's own size)"
        )
