"""MaskCLIP's masked self-distillation: codeword distributions of teacher vs student.

An online quantizer (a learned codebook, this objective's head next to the feature
predictor) turns each feature into a distribution over codewords, softmax(cos(feature,
codeword) / temperature). The teacher's distribution of the full-image patch feature
(sharp, low temperature, no gradient: mvl/targets/codebook.py) is the target of the
student's distribution of its prediction for the same, hidden, patch:
L = -(1/|M|) sum over hidden k of h_teacher(k) . log h_student(k).

What keeps this from collapsing (DINO / iBOT's recipe, which MaskCLIP builds on; the
paper does not spell it out [?]):
- `teacher_head`: "ema" (default) gives the teacher its own codebook, a moving average of
  the student's with the teacher tower's momentum schedule (state.teacher_head,
  mvl/train/ema.py); "shared" scores the teacher's features with the student's own
  codebook (stop-gradient only), the earlier design.
- `center` (default True): the teacher's cosine scores minus a running centre (momentum
  `center_momentum`, 0.9 as in DINO), kept in the train state and checkpointed.
- temperatures: teacher `teacher_temperature` (sharp), student `student_temperature`.
Codebook size and temperatures are unknown in the paper: DINO / iBOT defaults [?].

Logged: `teacher_perplexity`, exp of the entropy of the teacher's mean codeword
distribution over hidden patches (near 1: every patch maps to one codeword, collapse),
and `teacher_entropy`, the mean entropy of one patch's distribution in nats (near
log(codebook_size): every patch's distribution is uniform, the other collapse).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl import targets
from mvl.models.heads import Codebook
from mvl.objectives import register, rules
from mvl.objectives.features import feature_heads, predict_patch_features, validate_head
from mvl.targets.codebook import batch_center, codeword_logits

TEACHER_HEADS = ("ema", "shared")
# The batch's mean teacher score per codeword: a [K] vector the train step takes out of
# the metrics to move the running centre (mvl/train/ema.py), never logged.
BATCH_CENTER = "distill/batch_center"


def entropy(probs, axis=-1):
    return -(probs * jnp.log(jnp.maximum(probs, 1e-12))).sum(axis)


def teacher_usage(target, hidden) -> dict:
    """Perplexity of the mean codeword distribution and mean per-patch entropy, over
    hidden patches ([B, N] bool)."""
    hidden = hidden.astype(jnp.float32)
    count = jnp.maximum(hidden.sum(), 1.0)
    mean_target = (target * hidden[..., None]).sum((0, 1)) / count
    per_patch = (entropy(target) * hidden).sum() / count
    return {"teacher_perplexity": jnp.exp(entropy(mean_target)), "teacher_entropy": per_patch}


def distill_loss(
    student,
    teacher,
    codewords,
    hidden,
    student_temp: float,
    teacher_temp: float,
    teacher_codewords=None,
    center=None,
):
    """Cross-entropy of teacher -> student codeword distributions over hidden patches.

    `teacher_codewords` (default: `codewords`, the shared design) score the teacher's
    features; `center` ([K] or None) is subtracted from the teacher's scores.
    """
    teacher_codewords = codewords if teacher_codewords is None else teacher_codewords
    teacher_codewords = jax.lax.stop_gradient(teacher_codewords)
    target = targets.codeword_targets(teacher, teacher_codewords, teacher_temp, center)
    log_probs = jax.nn.log_softmax(codeword_logits(student, codewords, student_temp), -1)
    per_patch = -(target * log_probs).sum(-1)
    mask = hidden.astype(jnp.float32)
    loss = (per_patch * mask).sum() / jnp.maximum(mask.sum(), 1.0)
    return loss, teacher_usage(target, hidden)


def heads(cfg, model) -> dict:
    section = cfg.objectives.distill
    codebook = Codebook(section.codebook_size, cfg.teacher.image.width)
    return {**feature_heads(cfg, model, section.head), "codebook": codebook}


def validate(cfg):
    validate_head(cfg, "distill")
    section = cfg.objectives.distill
    if section.get("teacher_head", "ema") not in TEACHER_HEADS:
        raise rules.ConfigError(
            f"config objectives.distill.teacher_head={section.teacher_head!r} is not one of "
            f"{', '.join(TEACHER_HEADS)}"
        )
    momentum = section.get("center_momentum", 0.9)
    if not 0.0 <= momentum < 1.0:
        raise rules.ConfigError(
            f"config objectives.distill.center_momentum={momentum} must be in [0, 1)"
        )


def initial_teacher_head(cfg, params):
    """The teacher's own head state at step 0 (state.teacher_head), or None: the EMA
    codebook starts as the student's (as DINO's teacher starts as the student), the
    centre at zero."""
    if not cfg.objectives.get("distill", {}).get("weight", 0.0):
        return None
    section = cfg.objectives.distill
    head = {}
    if section.get("teacher_head", "ema") == "ema":
        head["codebook"] = jax.tree.map(lambda x: x, params["codebook"])
    if section.get("center", True):
        head["center"] = jnp.zeros((section.codebook_size,), jnp.float32)
    return head or None


def teacher_codebook_and_center(forward, cfg, student_codewords):
    """(teacher codewords, centre or None) from the state's teacher head; before one
    exists (inside Module.init) the student's codebook and no centre."""
    head = forward.teacher_head or {}
    codewords = student_codewords
    if cfg.get("teacher_head", "ema") == "ema" and "codebook" in head:
        codewords = head["codebook"]["codewords"]
    center = head.get("center") if cfg.get("center", True) else None
    return codewords, center


@register(
    "distill",
    heads=heads,
    validate=validate,
    count=lambda batch, masks, section: masks.image_hidden.sum(),  # what the loss divides by
)
def distill(forward, cfg):
    student = predict_patch_features(forward, cfg.head)
    teacher = forward.teacher_features()
    codewords = forward.head("codebook")
    teacher_codewords, center = teacher_codebook_and_center(forward, cfg, codewords)
    loss, metrics = distill_loss(
        student,
        teacher,
        codewords,
        forward.masks.image_hidden,
        cfg.student_temperature,
        cfg.teacher_temperature,
        teacher_codewords,
        center,
    )
    if center is not None:
        metrics["batch_center"] = batch_center(teacher, jax.lax.stop_gradient(teacher_codewords))
    return loss, metrics


class CollapseWarning:
    """One line in the train log when the teacher's codeword perplexity (a logging
    interval's mean) falls below `objectives.distill.collapse_perplexity`; it warns again
    only after the perplexity has recovered above the threshold and fallen once more."""

    METRIC = "distill/teacher_perplexity"

    def __init__(self, threshold: float, codebook_size: int = 0):
        self.threshold, self.codebook_size = threshold, codebook_size
        self.armed = True

    @classmethod
    def from_config(cls, cfg) -> CollapseWarning:
        section = cfg.objectives.get("distill", {})
        if not section.get("weight", 0.0):
            return cls(0.0)
        return cls(section.get("collapse_perplexity", 2.0), section.codebook_size)

    def check(self, step: int, values: dict) -> str | None:
        """The warning printed at `step` for the train metrics `values`, or None."""
        perplexity = values.get(self.METRIC)
        if perplexity is None or self.threshold <= 0:
            return None
        if perplexity >= self.threshold:
            self.armed = True
            return None
        if not self.armed:
            return None
        self.armed = False
        line = (
            f"WARNING step {step}: teacher codeword perplexity {float(perplexity):.3f} < "
            f"objectives.distill.collapse_perplexity={self.threshold:g} (codebook "
            f"{self.codebook_size}): the distillation targets have collapsed onto a few "
            "codewords (try objectives.distill.teacher_head='ema', center=True)"
        )
        print(line, flush=True)
        return line
