"""All masks of one step from the step's rng, drawn inside jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.mask import modality_dropout
from mvl.mask.masks import DROP, NO_PATCHES_HIDDEN, REPLACE, Masks
from mvl.mask.modality_aware import modality_aware_ratios
from mvl.mask.ranks import visible_indices
from mvl.mask.registry import IMAGE_KINDS, TEXT_KINDS


def grid_of(cfg) -> int:
    return cfg.model.image.image_size // cfg.model.image.patch_size


def patch_handling(mask_cfg) -> str:
    """How masked image passes treat hidden patches: none, replace or drop (static)."""
    if mask_cfg.image.kind == "none":
        return NO_PATCHES_HIDDEN
    return DROP if mask_cfg.image.drop else REPLACE


def visible_count(cfg) -> int:
    """Patches a dropped-patch encoding keeps per example (the full grid otherwise)."""
    grid = grid_of(cfg)
    if patch_handling(cfg.mask) != DROP:
        return grid * grid
    return grid * grid - IMAGE_KINDS[cfg.mask.image.kind].hidden_count(cfg.mask.image, grid)


def make_masks(cfg, batch, rng, vocab_size: int, special) -> Masks:
    """The masks of `cfg.mask` for `batch`; `vocab_size` and `special` are the
    tokenizer's (which ids text masking may draw, which it must leave, [MASK]'s id).
    The config's rules are checked once, before a run builds anything (mvl/validate.py)."""
    m, grid = cfg.mask, grid_of(cfg)
    image_rng, text_rng, mam_rng, mdo_rng = jax.random.split(rng, 4)
    batch_size = batch["image"].shape[0]
    image_ratio, text_ratio = m.image.ratio, m.text.ratio
    mam_mode = jnp.zeros((batch_size,), jnp.int32)
    if m.modality_aware.enabled:
        mam_mode, image_ratio, text_ratio = modality_aware_ratios(
            mam_rng, m.modality_aware, batch_size
        )
    image_kind = IMAGE_KINDS[m.image.kind]
    hidden = image_kind.draw(image_rng, m.image, batch_size, grid, image_ratio)
    handling = patch_handling(m)
    if handling == DROP:
        keep = visible_indices(hidden, image_kind.hidden_count(m.image, grid))
    else:
        keep = jnp.zeros((batch_size, 0), jnp.int32)
    text_ids, text_picked = TEXT_KINDS[m.text.kind].draw(
        text_rng, m.text, batch["text"], text_ratio, vocab_size, special
    )
    keep_text = keep_image = jnp.ones((batch_size,), bool)
    if modality_dropout.enabled(m.modality_dropout):
        keep_text, keep_image = modality_dropout.kept_modalities(
            mdo_rng, m.modality_dropout, batch_size
        )
    return Masks(hidden, keep, text_ids, text_picked, mam_mode, keep_text, keep_image, handling)
