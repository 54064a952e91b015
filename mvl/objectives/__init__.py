"""Objectives: pure loss functions, registered by name and weighted by the config.

Each registered objective is `fn(forward, cfg) -> (loss, metrics)`: it asks the step's
`Forward` for the passes it needs (shared with other objectives) and scores them with
a pure math function that tests check against hand-computed values. `needs(cfg)` names
the model parts it uses, so the model builds only what the enabled objectives need.
"""

from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Objective:
    name: str
    fn: Callable
    needs: Callable  # cfg -> tuple of model component names
    # (forward, cfg) -> images [B, H, W, 3] as this objective's head redraws them
    # (pixel objectives; evaluation draws them beside the originals)
    reconstruct: Callable | None = None


REGISTRY: dict[str, Objective] = {}


def register(name: str, needs: Callable, reconstruct: Callable | None = None):
    def decorate(fn):
        REGISTRY[name] = Objective(name, fn, needs, reconstruct)
        return fn

    return decorate


def get(name: str) -> Objective:
    _import_all()
    if name not in REGISTRY:
        raise KeyError(f"unknown objective {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def enabled(objectives_cfg) -> dict[str, float]:
    """{name: weight} of the objectives whose weight is non-zero, in config order."""
    _import_all()
    weights = {}
    for name, cfg in objectives_cfg.items():
        get(name)  # names the unknown objective
        if cfg.weight:
            weights[name] = float(cfg.weight)
    return weights


def _import_all():
    from mvl.objectives import (  # noqa: F401
        distill,
        features,
        itc,
        itm,
        mim,
        mlm,
        recon,
        siglip,
        stream_itm,
    )
