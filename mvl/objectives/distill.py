"""MaskCLIP's masked self-distillation: codeword distributions of teacher vs student.

An online quantizer (a learned codebook) turns each feature into a distribution over
codewords, softmax(cos(feature, codeword) / temperature). The teacher's distribution of
the full-image patch feature (sharp, low temperature, no gradient) is the target of the
student's distribution of its prediction for the same, hidden, patch:
L = -(1/|M|) sum over hidden k of h_teacher(k) . log h_student(k).
Codebook size and temperatures are unknown in the paper: DINO / iBOT defaults [?].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.models.heads import l2_normalize
from mvl.objectives import register
from mvl.objectives.features import head_needs, predict_patch_features


def codeword_logits(features, codewords, temperature: float):
    return l2_normalize(features) @ l2_normalize(codewords).T / temperature


def distill_loss(student, teacher, codewords, hidden, student_temp: float, teacher_temp: float):
    """Cross-entropy of teacher -> student codeword distributions over hidden patches.

    Also reports the perplexity of the teacher's mean codeword distribution: near 1
    means every patch maps to one codeword (collapse), near the codebook size the
    codebook is used evenly.
    """
    target = jax.nn.softmax(
        jax.lax.stop_gradient(codeword_logits(teacher, codewords, teacher_temp)), -1
    )
    log_probs = jax.nn.log_softmax(codeword_logits(student, codewords, student_temp), -1)
    per_patch = -(target * log_probs).sum(-1)
    hidden = hidden.astype(jnp.float32)
    count = jnp.maximum(hidden.sum(), 1.0)
    mean_target = (target * hidden[..., None]).sum((0, 1)) / count
    entropy = -(mean_target * jnp.log(jnp.maximum(mean_target, 1e-12))).sum()
    return (per_patch * hidden).sum() / count, {"teacher_perplexity": jnp.exp(entropy)}


@register("distill", needs=lambda cfg: head_needs(cfg.head, "objectives.distill") + ("codebook",))
def distill(forward, cfg):
    student = predict_patch_features(forward, cfg.head, "objectives.distill")
    return distill_loss(
        student,
        forward.teacher_patch_features(),
        forward.call("codewords"),
        forward.masks["image"],
        cfg.student_temperature,
        cfg.teacher_temperature,
    )
