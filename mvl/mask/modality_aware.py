"""MLIM's modality-aware masking: per example, heavy image masking with intact text,
heavy text masking with intact image, or light masking of both."""

from __future__ import annotations

import jax.numpy as jnp

from mvl.mask.modes import draw_modes, validate_probabilities

MAM_MODES = ("image_heavy", "text_heavy", "light")


def modality_aware_ratios(rng, cfg, batch_size: int):
    """(mode [B], image ratio [B], text ratio [B]), modes drawn with `cfg.probabilities`
    (in MAM_MODES order)."""
    mode = draw_modes(rng, batch_size, cfg.probabilities)
    image_ratio = jnp.array([cfg.heavy_ratio, 0.0, cfg.light_ratio])[mode]
    text_ratio = jnp.array([0.0, cfg.heavy_ratio, cfg.light_ratio])[mode]
    return mode, image_ratio, text_ratio


def validate(mask_cfg) -> None:
    validate_probabilities("modality_aware", mask_cfg.modality_aware.probabilities, MAM_MODES)
    aware = mask_cfg.modality_aware.enabled
    image, text = mask_cfg.image, mask_cfg.text
    if aware and (image.kind != "random" or image.drop or text.kind != "bert"):
        raise ValueError(
            f"config mask.modality_aware.enabled={aware!r}: needs mask.image.kind='random', "
            "mask.image.drop=False and mask.text.kind='bert'"
        )
