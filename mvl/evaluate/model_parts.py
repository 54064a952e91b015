"""What an evaluator may ask of a model: which passes it can run. The one place
evaluation reads the model's parts (the model builds the parts its enabled objectives
need, mvl/models/model.py: `model.parts`, the attribute names that have parameters)."""

from __future__ import annotations


def embeds(model) -> bool:
    """Projects images and texts into one embedding space (itc / siglip)."""
    return "image_projection" in model.parts


def has_image_tower(model) -> bool:
    return "image" in model.parts


def has_itm_head(model) -> bool:
    """Scores (image, text) pairs through the fusion encoder (MaskVLM's ITM)."""
    return "itm_head" in model.parts


def has_pair_match_head(model) -> bool:
    """A single stream fine-tuned for pair matching (MLIM's downstream head)."""
    return "pair_match_head" in model.parts


def single_stream(model) -> bool:
    """One encoder over [text; image] (MLIM), which can drop a modality."""
    return "single_stream" in model.parts
