"""The reconstructions picture (original / masked / reconstructed rows of `count`
held-out images), drawn by the first enabled objective that reconstructs pixels (an
objective registered with `reconstruct`: mim, recon); nothing for a model without one
(e.g. an ablation that switches the pixel objective off). Written to TensorBoard and
WORKDIR/<name>_<step>.png; no metrics."""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import numpy as np

from mvl import objectives
from mvl.evaluate import reconstruction
from mvl.evaluate.evaluator import Evaluator, fail
from mvl.evaluate.registry import register
from mvl.runtime import sharding


def pixel_reconstructor(cfg):
    """forward -> images of the first enabled objective that redraws pixels, or None."""
    for name in objectives.enabled(cfg.objectives):
        reconstruct = objectives.get(name).reconstruct
        if reconstruct is not None:
            return functools.partial(reconstruct, cfg=cfg.objectives[name])
    return None


@register("reconstructions")
class Reconstructions(Evaluator):
    defaults: ClassVar[dict] = dict(count=8)  # images in the picture (0 = none)

    @classmethod
    def validate(cls, where, section):
        if not isinstance(section["count"], int) or section["count"] < 0:
            fail(where, "count", section["count"], "must be an int >= 0")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        reconstruct = pixel_reconstructor(context.cfg)
        self.draws = reconstruct is not None and section.count > 0
        if self.draws:
            self.reconstruct_fn = reconstruction.make_reconstruct_fn(
                context.model, context.cfg, context.tokenizer.vocab_size, reconstruct
            )

    def run(self, state):
        return {}

    def pictures(self, state):
        if not self.draws:
            return {}
        ctx, count = self.context, self.section.count
        batch = {k: np.asarray(ctx.data[k][:count]) for k in ("image", "text")}
        with sharding.activate(ctx.mesh, ctx.rules):
            hidden, images = self.reconstruct_fn(
                state.params, batch, jax.random.PRNGKey(ctx.cfg.seed)
            )
        picture = reconstruction.grid_image(
            batch["image"], np.asarray(hidden), np.asarray(images), ctx.cfg.model.image.patch_size
        )
        return {self.name: picture}
