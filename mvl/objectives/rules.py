"""Config rules that several objectives share: the encoders they run and the teacher
they read. Each objective's `validate` calls the ones for the passes it makes."""

from __future__ import annotations

from mvl.config import ConfigError
from mvl.mask import modality_dropout


def fail(key: str, value, rule: str):
    raise ConfigError(f"config {key}={value!r}: {rule}")


def part(cfg, section: str):
    """model.<section>, which a config adds only when one of its objectives builds it."""
    if section not in cfg.model:
        raise ConfigError(
            f"config model.{section} is missing: the enabled objectives build this part; "
            "add its section in the config file with "
            f'mvl.config.add_model_parts(c, size, "{section}")'
        )
    return cfg.model[section]


def attention(cfg, section: str, width_from: str | None = None) -> None:
    """model.<section>.num_heads divides the width (of model.<width_from>, default the
    section's own)."""
    width = part(cfg, width_from or section).width
    heads = part(cfg, section).num_heads
    if heads < 1 or width % heads:
        fail(f"model.{section}.num_heads", heads, f"must divide the width {width}")


STEMS = ("patch", "conv")


def power_of_two_patches(cfg, what: str) -> None:
    patch = cfg.model.image.patch_size
    if patch & (patch - 1):
        fail("model.image.patch_size", patch, f"{what} needs a power-of-two patch size")


def positions(cfg, section: str) -> None:
    """model.<section>.positions is known; the fixed 2-D sin-cos table splits the width
    into 4 (sin / cos of row / column), so it needs a width divisible by 4."""
    from mvl.models.positions import KINDS

    kind = part(cfg, section).get("positions", "learned")  # .get: older saved configs
    one_of(f"model.{section}.positions", kind, KINDS)
    width = part(cfg, section).width
    if kind == "sincos2d" and width % 4:
        fail(
            f"model.{section}.positions",
            kind,
            f"needs model.{section}.width divisible by 4 (sin and cos of row and column), "
            f"got {width}",
        )


def image_tower(cfg) -> None:
    attention(cfg, "image")
    positions(cfg, "image")
    stem = cfg.model.image.get("stem", "patch")  # .get: configs saved before it existed
    one_of("model.image.stem", stem, STEMS)
    if stem == "conv":
        power_of_two_patches(cfg, "model.image.stem='conv'")


def two_towers(cfg, image: bool = True, text: bool = True, fusion: bool = False) -> None:
    """An objective that reads the image / text towers (and the cross-modal fusion)."""
    if modality_dropout.enabled(cfg.mask.modality_dropout):
        raise ConfigError(
            "config mask.modality_dropout needs a single-stream encoder (an objective with "
            "encoder='single_stream'); two-tower models always see both modalities"
        )
    if image:
        image_tower(cfg)
    if text:
        attention(cfg, "text")
    if fusion:
        attention(cfg, "fusion", "text")


def single_stream(cfg) -> None:
    attention(cfg, "single_stream")
    power_of_two_patches(cfg, "the single stream's convolution stem")


def one_of(key: str, value, allowed) -> None:
    if value not in allowed:
        fail(key, value, f"must be one of {', '.join(allowed)}")


def teacher(cfg, name: str) -> None:
    if cfg.teacher.kind == "none":
        fail(
            "teacher.kind",
            "none",
            f"objectives.{name} needs teacher features (an objective needs teacher features "
            "but config teacher.kind is none)",
        )
