"""The rules of the `mask` section, checked before anything is built."""

from __future__ import annotations

from mvl.mask import modality_aware, modality_dropout
from mvl.mask.make import grid_of
from mvl.mask.registry import IMAGE_KINDS, TEXT_KINDS

RATIOS = (
    ("image", "ratio"),
    ("text", "ratio"),
    ("text", "mask_prob"),
    ("text", "random_prob"),
    ("modality_aware", "heavy_ratio"),
    ("modality_aware", "light_ratio"),
)


def validate(cfg) -> None:
    """ValueError naming the key and the rule (mvl/validate.py reports it in one line)."""
    m, grid = cfg.mask, grid_of(cfg)
    for section, kinds in (("image", IMAGE_KINDS), ("text", TEXT_KINDS)):
        kind = m[section].kind
        if kind not in kinds:
            raise ValueError(
                f"config mask.{section}.kind={kind!r}: must be one of {', '.join(kinds)}"
            )
    for section, name in RATIOS:
        if not 0.0 <= m[section][name] <= 1.0:
            raise ValueError(
                f"config mask.{section}.{name}={m[section][name]!r}: must be in [0.0, 1.0]"
            )
    IMAGE_KINDS[m.image.kind].validate(m.image, grid)
    TEXT_KINDS[m.text.kind].validate(m.text)
    modality_aware.validate(m)
    modality_dropout.validate(m)
