"""MaskCLIP's masked self-distillation: codeword distributions of teacher vs student.

An online quantizer (a learned codebook, this objective's head next to the feature
predictor) turns each feature into a distribution over codewords, softmax(cos(feature,
codeword) / temperature). The teacher's distribution of the full-image patch feature
(sharp, low temperature, no gradient: mvl/targets/codebook.py) is the target of the
student's distribution of its prediction for the same, hidden, patch:
L = -(1/|M|) sum over hidden k of h_teacher(k) . log h_student(k).
Codebook size and temperatures are unknown in the paper: DINO / iBOT defaults [?].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl import targets
from mvl.models.heads import Codebook
from mvl.objectives import register
from mvl.objectives.features import feature_heads, predict_patch_features, validate_head
from mvl.targets.codebook import codeword_logits


def distill_loss(student, teacher, codewords, hidden, student_temp: float, teacher_temp: float):
    """Cross-entropy of teacher -> student codeword distributions over hidden patches.

    Also reports the perplexity of the teacher's mean codeword distribution: near 1
    means every patch maps to one codeword (collapse), near the codebook size the
    codebook is used evenly.
    """
    target = targets.codeword_targets(teacher, codewords, teacher_temp)
    log_probs = jax.nn.log_softmax(codeword_logits(student, codewords, student_temp), -1)
    per_patch = -(target * log_probs).sum(-1)
    hidden = hidden.astype(jnp.float32)
    count = jnp.maximum(hidden.sum(), 1.0)
    mean_target = (target * hidden[..., None]).sum((0, 1)) / count
    entropy = -(mean_target * jnp.log(jnp.maximum(mean_target, 1e-12))).sum()
    return (per_patch * hidden).sum() / count, {"teacher_perplexity": jnp.exp(entropy)}


def heads(cfg, model) -> dict:
    section = cfg.objectives.distill
    codebook = Codebook(section.codebook_size, cfg.teacher.image.width)
    return {**feature_heads(cfg, model, section.head), "codebook": codebook}


@register(
    "distill",
    heads=heads,
    validate=lambda cfg: validate_head(cfg, "distill"),
    count=lambda batch, masks, section: masks.image_hidden.sum(),  # what the loss divides by
)
def distill(forward, cfg):
    student = predict_patch_features(forward, cfg.head)
    return distill_loss(
        student,
        forward.teacher_features(),
        forward.head("codebook"),
        forward.masks.image_hidden,
        cfg.student_temperature,
        cfg.teacher_temperature,
    )
