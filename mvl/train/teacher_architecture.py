"""A frozen teacher is built the way its checkpoint was trained.

MVP's teacher is another run's image tower, or CLIP weights imported by
`python -m mvl.weights`: its width, depth, patch size, pixel normalisation, activation
and LayerNorm epsilon are the teacher run's, not the student's. Rather than asking for
every one of them as an override, `resolve` reads them from the teacher checkpoint's
saved config when a run starts; the resolved config is what the student's checkpoints
record, so evaluating or resuming it needs nothing more.
"""

from __future__ import annotations

import ml_collections

from mvl.config import ConfigError
from mvl.runtime.errors import UserError

KINDS = ("none", "frozen", "ema")
# An EMA teacher averages the student's parameters: the same tower, the same tree.
EMA_SAME_KEYS = ("width", "depth", "patch_size", "layer_scale", "pre_norm", "stem")


def _fail(key: str, value, rule: str):
    raise ConfigError(f"config {key}={value!r}: {rule}")


def validate(cfg, activations) -> None:
    """The rules of the `teacher` section (mvl/validate.py runs them before building)."""
    t = cfg.teacher
    if t.kind not in KINDS:
        _fail("teacher.kind", t.kind, f"must be one of {', '.join(KINDS)}")
    if t.kind == "none":
        return
    if "image" not in t:
        _fail(
            "teacher.kind",
            t.kind,
            "this config has no teacher section: a method with a teacher adds it in its "
            f'config file with mvl.config.add_teacher(c, "{t.kind}")',
        )
    if t.act and t.act not in activations:
        _fail("teacher.act", t.act, f"must be one of {', '.join(activations)}")
    if t.kind == "ema":
        if not 0.0 <= t.momentum <= 1.0:
            _fail("teacher.momentum", t.momentum, "must be in [0.0, 1.0]")
        for key in EMA_SAME_KEYS:
            student, teacher = cfg.model.image.get(key), t.image.get(key)
            if student != teacher:
                _fail(
                    f"teacher.image.{key}",
                    teacher,
                    f"an ema teacher is the student's tower: set it to model.image.{key}="
                    f"{student!r} too",
                )
        if dict(t.image) != dict(cfg.model.image):
            _fail("teacher.kind", "ema", "needs teacher.image equal to model.image")
    if t.kind != "none":
        student = cfg.model.image.image_size // cfg.model.image.patch_size
        teacher = t.image.image_size // t.image.patch_size
        if student != teacher:
            _fail(
                "teacher.image.patch_size",
                t.image.patch_size,
                f"the teacher's patch grid ({teacher}) must match the student's ({student})",
            )


def resolve(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`cfg` with teacher.image / act / ln_eps from `teacher.checkpoint` (frozen only)."""
    if cfg.teacher.kind != "frozen" or not cfg.teacher.checkpoint:
        return cfg
    from mvl.runtime import checkpoint  # orbax and grain: only when there is a checkpoint to read

    try:
        saved = checkpoint.load_saved_config(cfg.teacher.checkpoint)["model"]
    except UserError as e:
        raise UserError(f"config teacher.checkpoint: {e}") from None
    resolved = ml_collections.ConfigDict(cfg.to_dict())
    resolved.teacher.image = ml_collections.ConfigDict(saved["image"])
    resolved.teacher.act = saved.get("act", cfg.model.act)
    resolved.teacher.ln_eps = float(saved.get("ln_eps", cfg.model.ln_eps))
    resolved.lock()
    return resolved
