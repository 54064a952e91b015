"""TIPS-style masked prediction (as SigLIP 2 adds it for the end of training): the
student sees the image with a share of its patches replaced by the mask token
(mask.image: kind="random", drop=False, ratio 0.5) and predicts, at the hidden
positions, the EMA teacher's per-patch features of the full image. The score is
self_distill.py's loss applied per patch: the student's and the teacher's patch features
through one projection head onto prototype logits, the teacher's distribution centred
(over the batch's patches) and sharpened, cross-entropy over hidden patches only.
"""

from __future__ import annotations

from mvl import mask
from mvl.objectives import register, rules
from mvl.objectives.self_distill import prototype_head, self_distill_loss, validate_teacher


def validate(cfg) -> None:
    rules.two_towers(cfg, text=False)
    validate_teacher(cfg, "masked_prediction")
    if mask.patch_handling(cfg.mask) != mask.REPLACE:
        rules.fail(
            "mask.image.kind",
            cfg.mask.image.kind,
            "objectives.masked_prediction needs hidden patches replaced by the mask token "
            "(mask.image.kind random / block / beit with ratio > 0 and drop=False)",
        )


@register(
    "masked_prediction",
    heads=lambda cfg, model: {
        "masked_prediction_head": prototype_head(cfg.objectives.masked_prediction, model)
    },
    validate=validate,
    # coupled: the teacher's logits are centred by the batch mean, so gradient
    # accumulation runs it on the full batch from the cached masked image tokens
    coupled=True,
)
def masked_prediction(forward, cfg):
    student_tokens = forward.image_tokens(masked=True)[:, 1:]  # [CLS] left out
    student = forward.head("masked_prediction_head", student_tokens)
    teacher = forward.head("masked_prediction_head", forward.teacher_features())
    return self_distill_loss(
        student,
        teacher,
        cfg.student_temperature,
        cfg.teacher_temperature,
        forward.masks.image_hidden,
    )
