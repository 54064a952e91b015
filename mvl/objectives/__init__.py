"""Objectives: each one module that owns its loss, its heads and its config rules.

A registered objective is
  loss(forward, section) -> (loss, metrics): asks the step's `Forward` for the encoder
      passes it needs (shared with other objectives), calls its heads, and scores them
      against a target (mvl/targets) with a pure function tests check by hand;
  heads(cfg, model) -> {attribute: flax Module}: the head modules it adds to the model,
      under these attribute names (the parameter paths of checkpoints);
  validate(cfg): the rules of its config section, raising ConfigError naming the key;
  coupled: True when an example's loss reads other examples of the batch (contrastive
      negatives, ITM's mined pairs); gradient accumulation then computes it on the full
      batch from cached encoder outputs (mvl/train/grad_cache.py);
  count(batch, masks, section) -> scalar: for a per-example loss normalised by a count
      that varies with the masks (MLM's scored tokens), that count, so accumulation
      divides every slice by the full batch's; None: the loss is a mean over examples.
The config enables objectives by a non-zero `objectives.<name>.weight`; a module
named in the config's `imports` can register more (mvl/user_modules.py).
"""

from __future__ import annotations

import dataclasses
from typing import Callable


def no_heads(cfg, model) -> dict:
    return {}


def no_rules(cfg) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class Objective:
    name: str
    loss: Callable
    heads: Callable = no_heads
    validate: Callable = no_rules
    # (forward, cfg) -> images [B, H, W, 3] as this objective's head redraws them
    # (pixel objectives; evaluation draws them beside the originals)
    reconstruct: Callable | None = None
    coupled: bool = False
    count: Callable | None = None


REGISTRY: dict[str, Objective] = {}


def register(
    name: str,
    heads: Callable = no_heads,
    validate: Callable = no_rules,
    reconstruct: Callable | None = None,
    coupled: bool = False,
    count: Callable | None = None,
):
    """Decorator over the loss function: registers the objective `name`."""

    def decorate(loss):
        REGISTRY[name] = Objective(name, loss, heads, validate, reconstruct, coupled, count)
        return loss

    return decorate


def get(name: str) -> Objective:
    _import_builtin()
    if name not in REGISTRY:
        raise KeyError(f"unknown objective {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def enabled(objectives_cfg) -> dict[str, float]:
    """{name: weight} of the objectives whose weight is non-zero, in config order."""
    _import_builtin()
    weights = {}
    for name, cfg in objectives_cfg.items():
        get(name)  # names the unknown objective
        if cfg.weight:
            weights[name] = float(cfg.weight)
    return weights


def heads_of(cfg, model) -> dict:
    """{attribute: Module} of every enabled objective's heads; two objectives that name
    the same attribute (ITC and ITM's projections) share that one head."""
    heads = {}
    for name in enabled(cfg.objectives):
        for attribute, module in get(name).heads(cfg, model).items():
            heads.setdefault(attribute, module)
    return heads


def _import_builtin():
    from mvl.objectives import (  # noqa: F401
        caption,
        distill,
        features,
        itc,
        itm,
        masked_prediction,
        mim,
        mlm,
        pair_match,
        recon,
        self_distill,
        siglip,
        stream_itm,
    )
