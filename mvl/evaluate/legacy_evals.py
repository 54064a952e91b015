"""Configs saved before evaluators were declared (`evals`) said which evaluations run
with flags in `eval` (held_out_losses, probe.enabled, pair_matching, itm_rerank_k,
modalities, num_reconstructions) and ran retrieval and zero-shot for every model that
embeds; `declared` turns such a config into the declared form with the same outcome,
so `python -m mvl.evaluate` reads old runs as they were evaluated."""

from __future__ import annotations

import ml_collections

from mvl.config.evals import add_eval
from mvl.evaluate import model_parts


def declared(cfg, model):
    """`cfg` (unlocked) with `evals` filled from its old `eval` flags, if it has none."""
    if "evals" in cfg:
        return cfg
    old = cfg.eval
    cfg.evals = ml_collections.ConfigDict()
    modalities = tuple(old.get("modalities", ("both",)))
    if model_parts.embeds(model):
        add_eval(cfg, "retrieval", itm_rerank_k=old.get("itm_rerank_k", 0))
        add_eval(cfg, "zeroshot")
    if old.get("held_out_losses"):
        add_eval(cfg, "held_out_losses", modalities=modalities)
    probe = old.get("probe", {})
    if probe.get("enabled") and model_parts.has_image_tower(model):
        options = {k: probe[k] for k in ("pool", "steps", "knn_k") if k in probe}
        add_eval(cfg, "probe", **options)
    if old.get("pair_matching") and (model_parts.embeds(model) or model_parts.single_stream(model)):
        add_eval(cfg, "pair_matching", modalities=modalities)
    if old.get("num_reconstructions"):
        add_eval(cfg, "reconstructions", every_steps=0, count=old.num_reconstructions)
    return cfg
