"""Gradient accumulation is exact: k microbatches give the full-batch gradient.

Every method config (configs/*.py) is covered, found from the files and the objectives
registry, so a new method config is tested without editing this file. Each is built at
TINY size on 8 simulated devices with the batch sharded as in training, and its step
gradient with optim.microbatches = 2 and 4 is compared with one pass over the batch.
"""

import glob
import os

import jax
import numpy as np
import pytest

from mvl import validate
from mvl.config import apply_overrides
from mvl.runtime import sharding
from mvl.train import state as state_lib
from mvl.train.datasets import train_dataset
from mvl.train.program import build_program
from mvl.train.run_tokenizer import load_tokenizer
from mvl.train.step import make_masks, step_gradients, step_rngs

# Methods whose objectives are all per-example (MAE, MVP, MLIM's default) are covered
# too: their normalising counts (MLM's scored tokens) vary per slice.
METHODS = sorted(
    os.path.basename(path)[: -len(".py")]
    for path in glob.glob(os.path.join(os.path.dirname(__file__), "..", "configs", "*.py"))
)
# MLIM's ITM ablation (single-stream ITM pairs images across examples).
VARIANTS = [(method, {}) for method in METHODS] + [
    ("mlim", {"objectives.stream_itm.weight": "1.0", "objectives.recon.weight": "0.0"})
]
# The default suite runs three that cover every coupled objective (SigLIP; MaskVLM+MVP's ITC,
# ITM mining, MLM and MIM through the fusion; MLIM's single-stream ITM and MLM); the
# rest run with `pytest -m slow` (each compiles three steps).
DEFAULT = {("siglip", False), ("maskvlm_mvp", False), ("mlim", True)}
PARAMS = [
    pytest.param(
        method,
        overrides,
        id=method + ("_itm" if overrides else ""),
        marks=() if (method, bool(overrides)) in DEFAULT else pytest.mark.slow(minutes=1),
    )
    for method, overrides in VARIANTS
]
# float32 rounding: the scan sums slices in another order than one matmul over the batch.
RTOL, ATOL = 2e-5, 1e-6


def build(cfg, tmp_path):
    """(mesh, rules, program, state, batch) without a run directory's checks: a frozen
    teacher is the randomly initialised tower (its values do not matter here)."""
    validate.validate(cfg, len(jax.devices()))
    mesh = sharding.make_mesh(cfg.mesh)
    tokenizer = load_tokenizer(cfg, str(tmp_path))
    program = build_program(cfg, mesh, tokenizer.vocab_size, tokenizer.special_ids)
    state, _ = state_lib.initial_state(
        program.model,
        program.optimizer,
        cfg,
        mesh,
        teacher=program.teacher_model,
        shardings=program.state_shardings,
    )
    batch = sharding.global_batch(next(iter(train_dataset(cfg, tokenizer, mesh))), mesh)
    return mesh, sharding.rules(cfg.mesh), program, state, batch


def gradients(cfg, program, state, batch, count: int):
    cfg = cfg.copy_and_resolve_references()
    apply_overrides(cfg, {"optim.microbatches": str(count)})
    model = program.model
    teacher_model = program.teacher_model

    def step(state, batch):
        mask_rng, objective_rng = step_rngs(state)
        teacher = None if teacher_model is None else (teacher_model, state.teacher)
        masks = make_masks(cfg, batch, mask_rng, model)
        return step_gradients(model, cfg, state.params, batch, masks, objective_rng, teacher)

    return jax.device_get(jax.jit(step)(state, batch))


@pytest.mark.parametrize("method, overrides", PARAMS)
def test_microbatches_give_the_full_batch_gradient(tiny_config, tmp_path, method, overrides):
    cfg = tiny_config(method, **overrides)
    if cfg.init.required:  # never read: gradients are compared at the initial parameters
        apply_overrides(cfg, {"init.checkpoint": str(tmp_path / "pretrained")})
    mesh, rules, program, state, batch = build(cfg, tmp_path)
    with sharding.activate(mesh, rules):
        whole_grads, whole_metrics = gradients(cfg, program, state, batch, 1)
        # atol relative to the largest gradient entry: tiny entries carry its rounding
        atol = ATOL * max(float(np.abs(g).max()) for g in jax.tree.leaves(whole_grads))
        for count in (2, 4):
            grads, metrics = gradients(cfg, program, state, batch, count)
            for key in whole_metrics:
                if key.endswith("loss"):
                    np.testing.assert_allclose(metrics[key], whole_metrics[key], rtol=RTOL)
            jax.tree.map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=RTOL, atol=atol),
                grads,
                whole_grads,
            )
    assert atol > 0  # the comparison is not of zeros


def test_microbatches_hold_one_slice_of_activations(tiny_config):
    """The compiled step's temps (XLA's memory analysis, one device) at k = 4 are well
    under those at k = 1: the towers' activations are held for one slice at a time."""
    from mvl.perf.accumulation_memory import temps_by_microbatches

    cfg = tiny_config("clip", **{"batch_size": "64", "mesh.data": "1"})
    memory = temps_by_microbatches(cfg, (1, 4), jax.devices()[:1])
    assert memory[4]["temp"] < 0.6 * memory[1]["temp"], memory
