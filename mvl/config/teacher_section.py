"""The `teacher` section: `kind` in every config ("none" unless a method has one), the
rest added by the configs whose method learns from a teacher (`add_teacher`)."""

from __future__ import annotations

import ml_collections

KINDS = ("none", "frozen", "ema")


def teacher_section() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(kind="none"))


def add_teacher(c, kind: str):
    """Gives `c` a teacher of `kind`: "frozen", a fixed image tower from `checkpoint`
    (MVP), or "ema", a moving average of the student's image tower, updated every step
    (MaskCLIP's mean teacher). Its tower starts as a copy of model.image as it is now
    (set_image_tower keeps them together afterwards)."""
    c.teacher = ml_collections.ConfigDict(
        dict(
            kind=kind,
            checkpoint="",  # frozen: a run (workdir) whose image tower becomes the teacher
            momentum=0.996,  # ema: momentum at step 0, cosine to 1 at the end [?]
            # The teacher tower's architecture. frozen: replaced, when the run starts, by
            # what `checkpoint` was saved with (its model.image, act and ln_eps), so any
            # run's image tower or imported CLIP weights work as they are (the patch grids
            # must match); ema: the student's.
            image=dict(c.model.image),
            act="",  # "" = model.act
            ln_eps=0.0,  # 0 = model.ln_eps
        )
    )
