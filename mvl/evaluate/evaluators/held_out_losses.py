"""Every enabled objective's loss on the held-out rows, with fixed masks, under each
`modalities` mode (mvl/evaluate/losses.py): held_out/<loss>, held_out/<mode>/<loss>."""

from __future__ import annotations

from typing import ClassVar

from mvl.evaluate.evaluator import Evaluator
from mvl.evaluate.evaluators.modalities import check_model_drops, validate_modalities
from mvl.evaluate.registry import register


@register("held_out_losses")
class HeldOutLossesEvaluator(Evaluator):
    defaults: ClassVar[dict] = dict(modalities=("both",))

    @classmethod
    def validate(cls, where, section):
        validate_modalities(where, section)

    def __init__(self, name, section, context):
        from mvl.evaluate.losses import HeldOutLosses

        super().__init__(name, section, context)
        check_model_drops(self, context.model)
        self.losses = HeldOutLosses(
            context.model,
            context.cfg,
            context.tokenizer.vocab_size,
            context.mesh,
            tuple(section.modalities),
            context.teacher_model,
        )

    def run(self, state):
        teacher_head = getattr(state, "teacher_head", None)  # MaskCLIP's EMA codebook, centre
        return self.losses.run(state.params, self.context.data, state.teacher, teacher_head)
