"""SILC's local-to-global self-distillation (as SigLIP 2 adds it for the end of training).

The EMA teacher (teacher.kind="ema": a moving average of the student's image tower)
sees the full image; the student sees `data.local_crops.count` local views of it
(mvl/data/local_crops.py). The pooled features of each view and of the teacher's full
image go through one projection head (mvl/models/prototype_head.py) onto prototype
logits, and the student's distribution over prototypes of each local view matches the
teacher's of the global view:
  L = mean over images b, views k of  -sum_p t_b(p) log s_bk(p),
  t_b = softmax((u_b - mean over the batch of u) / teacher_temperature)  (no gradient),
  s_bk = softmax(v_bk / student_temperature),
where u, v are the head's logits of the teacher's and the student's pooled features.
Centring by the batch mean of the teacher's logits (DINO keeps a running mean instead)
keeps the stage stateless, so a resumed run is exact. The centring couples the batch's
examples, so under gradient accumulation (optim.microbatches > 1) this objective runs
on the full batch (mvl/train/grad_cache.py, exact); its local-view passes are not tower
outputs the accumulation caches, so they are computed there for the whole batch at
once: the one part of a SigLIP 2 step whose activations are not split into slices. Pooled features are the mean of
the patch tokens (the teacher hands over patch features only). masked_prediction.py
scores per-patch features with the same loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.data import local_crops
from mvl.models.prototype_head import PrototypeHead
from mvl.objectives import register, rules


def self_distill_loss(student_logits, teacher_logits, student_temp, teacher_temp, weights):
    """Cross-entropy of the centred, sharpened teacher distribution to the student's.

    student_logits [..., P] and teacher_logits broadcastable to it; weights (the student
    logits' shape without P) says which entries count (1) and which not (0). Centring
    subtracts the weighted-in mean over every entry of the teacher's logits."""
    teacher_logits = jax.lax.stop_gradient(teacher_logits.astype(jnp.float32))
    axes = tuple(range(teacher_logits.ndim - 1))
    centred = teacher_logits - teacher_logits.mean(axes, keepdims=True)
    target = jax.nn.softmax(centred / teacher_temp, -1)
    log_probs = jax.nn.log_softmax(student_logits.astype(jnp.float32) / student_temp, -1)
    per_entry = -(target * log_probs).sum(-1)
    weights = jnp.broadcast_to(weights.astype(jnp.float32), per_entry.shape)
    count = jnp.maximum(weights.sum(), 1.0)
    mean_target = (target * weights[..., None]).sum(axes) / count
    entropy = -(mean_target * jnp.log(jnp.maximum(mean_target, 1e-12))).sum()
    return (per_entry * weights).sum() / count, {"teacher_perplexity": jnp.exp(entropy)}


def prototype_head(section, model) -> PrototypeHead:
    return PrototypeHead(
        section.head_hidden,
        section.head_bottleneck,
        section.prototypes,
        act=model.config.act,
        dtype=model.layer_kwargs()["dtype"],
    )


def validate_teacher(cfg, name: str) -> None:
    """An EMA teacher: its features are the student tower's, in the student's width."""
    rules.teacher(cfg, name)
    if cfg.teacher.kind != "ema":
        rules.fail("teacher.kind", cfg.teacher.kind, f"objectives.{name} needs an ema teacher")
    section = cfg.objectives[name]
    for key in ("head_hidden", "head_bottleneck", "prototypes"):
        if isinstance(section[key], bool) or not isinstance(section[key], int) or section[key] < 1:
            rules.fail(f"objectives.{name}.{key}", section[key], "must be an int >= 1")
    for key in ("student_temperature", "teacher_temperature"):
        if not section[key] > 0:
            rules.fail(f"objectives.{name}.{key}", section[key], "must be > 0")


def validate(cfg) -> None:
    rules.two_towers(cfg, text=False)
    validate_teacher(cfg, "self_distill")
    local_crops.validate(cfg)


@register(
    "self_distill",
    heads=lambda cfg, model: {
        "self_distill_head": prototype_head(cfg.objectives.self_distill, model)
    },
    validate=validate,
    coupled=True,  # the batch-mean centring (see the module docstring)
)
def self_distill(forward, cfg):
    data = forward.model.run.data
    images = forward.batch["image"]
    views = local_crops.local_views(forward.rng("local_crops"), images, data.local_crops)
    student_tokens = forward.call("encode_image", views, None, None, part="local_views")
    student = forward.head("self_distill_head", student_tokens[:, 1:].mean(1))
    student = student.reshape(images.shape[0], data.local_crops.count, -1)
    teacher = forward.head("self_distill_head", forward.teacher_features().mean(1))
    weights = jnp.ones(student.shape[:2])
    return self_distill_loss(
        student, teacher[:, None], cfg.student_temperature, cfg.teacher_temperature, weights
    )
