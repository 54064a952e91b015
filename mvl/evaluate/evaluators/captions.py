"""Greedy captions of `count` held-out images by the captioning decoder (SigLIP 2's
LocCa objective), beside their reference captions: a markdown table in TensorBoard's
text tab and WORKDIR/<name>_<step>.md, plus the share of generated tokens that match
the reference's at the same position (eval/<name>/token_match). The caption loss itself
is the held_out_losses evaluator's held_out/caption/loss."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mvl.evaluate.captioning import make_greedy_fn
from mvl.evaluate.evaluator import Evaluator, fail
from mvl.evaluate.registry import register
from mvl.runtime import sharding


@register("captions")
class Captions(Evaluator):
    defaults: ClassVar[dict] = dict(count=8)

    @classmethod
    def validate(cls, where, section):
        if isinstance(section["count"], bool) or not isinstance(section["count"], int):
            fail(where, "count", section["count"], "must be an int >= 1")
        if section["count"] < 1:
            fail(where, "count", section["count"], "must be an int >= 1")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if "caption_decoder" not in context.model.parts:
            self.refuse("needs a captioning decoder (objectives.caption with a weight)")
        self.greedy = make_greedy_fn(context.model, context.cfg.data.max_text_len)
        self._last: list[tuple[str, str]] = []

    def _generate(self, state):
        ctx = self.context
        images = np.asarray(ctx.data["image"][: self.section.count])
        references = np.asarray(ctx.data["text"][: self.section.count])
        with sharding.activate(ctx.mesh, ctx.rules):
            ids = np.asarray(self.greedy(state.params, images, references[:, 0]))
        return references, ids

    def run(self, state):
        references, ids = self._generate(state)
        valid = np.asarray(self.context.model.special.valid(references))
        match = ((ids == references) & valid)[:, 1:].sum() / max(valid[:, 1:].sum(), 1)
        decode = self.context.tokenizer.decode
        self._last = [(decode(r), decode(g)) for r, g in zip(references, ids)]
        return {f"{self.name}/token_match": float(match)}

    def texts(self, state) -> dict[str, str]:
        """{name: markdown} of the captions `run` generated last."""
        if not self._last:
            self.run(state)
        rows = [f"| {ref} | {gen} |" for ref, gen in self._last]
        return {self.name: "\n".join(["| reference | greedy caption |", "|---|---|", *rows])}
