"""A frozen teacher is built the way its checkpoint was trained.

MVP's teacher is another run's image tower, or CLIP weights imported by
`python -m mvl.convert`: its width, depth, patch size, pixel normalisation, activation
and LayerNorm epsilon are the teacher run's, not the student's. Rather than asking for
every one of them as an override, `resolve` reads them from the teacher checkpoint's
saved config when a run starts; the resolved config is what the student's checkpoints
record, so evaluating or resuming it needs nothing more.
"""

from __future__ import annotations

import ml_collections

from mvl.errors import UserError


def resolve(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`cfg` with teacher.image / act / ln_eps from `teacher.checkpoint` (frozen only)."""
    if cfg.teacher.kind != "frozen" or not cfg.teacher.checkpoint:
        return cfg
    from mvl import checkpoint  # orbax and grain: only when there is a checkpoint to read

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
