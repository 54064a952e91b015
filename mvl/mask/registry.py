"""Mask kinds by name: `mask.image.kind` and `mask.text.kind` pick one.

A kind is a small function plus its config rules; mvl's kinds register themselves in
this package, and a module named in the config's `imports` can register more.
"""

from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class ImageKind:
    draw: Callable  # (rng, cfg.mask.image, batch_size, grid, ratio) -> bool [B, N]
    hidden_count: Callable  # (cfg.mask.image, grid) -> patches hidden per example (static)
    validate: Callable  # (cfg.mask.image, grid) -> None; raises naming the key


@dataclasses.dataclass(frozen=True)
class TextKind:
    draw: Callable  # (rng, cfg.mask.text, ids, ratio, vocab_size, special) -> (ids, picked)
    validate: Callable  # (cfg.mask.text) -> None


IMAGE_KINDS: dict[str, ImageKind] = {}
TEXT_KINDS: dict[str, TextKind] = {}


def _no_rules(*_):
    pass


def register_image_kind(name: str, hidden_count: Callable, validate: Callable = _no_rules):
    """Decorator: `draw(rng, cfg, batch_size, grid, ratio)` hides exactly
    `hidden_count(cfg, grid)` patches per example; `ratio` is cfg.ratio or a [B] array."""

    def decorate(draw):
        IMAGE_KINDS[name] = ImageKind(draw, hidden_count, validate)
        return draw

    return decorate


def register_text_kind(name: str, validate: Callable = _no_rules):
    def decorate(draw):
        TEXT_KINDS[name] = TextKind(draw, validate)
        return draw

    return decorate
