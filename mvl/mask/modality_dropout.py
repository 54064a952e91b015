"""MLIM's modality dropout: per example, which modalities the single stream sees."""

from __future__ import annotations

from mvl.mask.modes import draw_modes, validate_probabilities

MDO_MODES = ("text_only", "image_only", "both")


def enabled(cfg) -> bool:
    """`cfg`: the mask.modality_dropout section."""
    return cfg.probabilities[MDO_MODES.index("both")] < 1.0


def kept_modalities(rng, cfg, batch_size: int):
    """(keep text [B], keep image [B]); never both dropped."""
    mode = draw_modes(rng, batch_size, cfg.probabilities)
    return mode != MDO_MODES.index("image_only"), mode != MDO_MODES.index("text_only")


def validate(mask_cfg) -> None:
    validate_probabilities("modality_dropout", mask_cfg.modality_dropout.probabilities, MDO_MODES)
