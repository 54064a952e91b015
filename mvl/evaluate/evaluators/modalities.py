"""The `modalities` option two evaluators share: modality-dropout modes to evaluate under."""

from __future__ import annotations

from mvl import mask
from mvl.evaluate import model_parts
from mvl.evaluate.evaluator import fail


def validate_modalities(where: str, section: dict):
    modes = tuple(section["modalities"])
    bad = [m for m in modes if m not in mask.MDO_MODES]
    if not modes or bad:
        fail(where, "modalities", modes, f"use some of {', '.join(mask.MDO_MODES)}")


def check_model_drops(evaluator, model):
    """Modes other than "both" drop a modality: only a single-stream model can."""
    modes = tuple(evaluator.section.modalities)
    if set(modes) - {"both"} and not model_parts.single_stream(model):
        evaluator.refuse(
            f"modalities={modes}: dropping a modality needs a single-stream model (MLIM); "
            "use ('both',)"
        )
