"""The EMA (mean) teacher: teacher <- m * teacher + (1 - m) * student, inside train_step.

The momentum follows a cosine from `teacher.momentum` at step 0 to 1 at the last step
(DINO / iBOT's schedule, MaskCLIP's default [?]): the teacher moves less as training ends.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def momentum(step, base: float, total_steps: int):
    progress = jnp.clip(step / max(total_steps, 1), 0.0, 1.0)
    return 1.0 - (1.0 - base) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0


def ema_update(teacher, student, m):
    """Moves every teacher entry towards the student's entry at the same path; student
    entries the teacher lacks (e.g. the mask token of a masked-input student) are ignored."""
    matching = same_entries(student, teacher)
    return jax.tree.map(lambda t, s: m * t + (1.0 - m) * s.astype(t.dtype), teacher, matching)


def same_entries(student, teacher):
    """The part of the `student` tree that has the structure of `teacher`."""
    if isinstance(teacher, dict):
        return {key: same_entries(student[key], value) for key, value in teacher.items()}
    return student


def update_teacher_head(cfg, state, new_state, metrics: dict):
    """`new_state` with its teacher head moved on (the same momentum schedule as the
    tower): each EMA copy of a student head (MaskCLIP's codebook) towards the updated
    student's, and the running centre towards this batch's mean teacher scores, which
    the distillation objective left in `metrics` and this takes out (not a scalar)."""
    from mvl.objectives.distill import BATCH_CENTER

    batch_center = metrics.pop(BATCH_CENTER, None)
    head = state.teacher_head
    if head is None:
        return new_state
    m = momentum(state.step, cfg.teacher.momentum, cfg.total_steps)
    moved = {
        name: ema_update(value, new_state.params[name], m)
        for name, value in head.items()
        if name != "center"
    }
    if "center" in head and batch_center is not None:
        c = cfg.objectives.distill.get("center_momentum", 0.9)
        moved["center"] = c * head["center"] + (1.0 - c) * batch_center
    elif "center" in head:
        moved["center"] = head["center"]
    return new_state.replace(teacher_head=moved)
