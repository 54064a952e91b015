"""MLIM as the paper uses it: no modality dropout in pretraining, a pair-matching stage
fine-tuned with it, RECON's reductions, and per-objective gradient norms."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import config as config_lib
from mvl.mask import modality_dropout


def test_mlim_pretrains_without_modality_dropout_and_its_finetune_stage_uses_it():
    pretrain = config_lib.load_config("configs/mlim.py:demo")
    assert tuple(pretrain.mask.modality_dropout.probabilities) == (0.0, 0.0, 1.0)
    assert not modality_dropout.enabled(pretrain.mask.modality_dropout)
    assert pretrain.objectives.recon.reduction == "sse_mean_over_pixels"
    finetune = config_lib.load_config("configs/mlim_pair_matching.py:demo")
    assert modality_dropout.enabled(finetune.mask.modality_dropout)
    assert tuple(finetune.mask.modality_dropout.probabilities) == (0.1, 0.1, 0.8)
    assert set(finetune.objectives) == {"pair_match"}
    assert finetune.mask.image.kind == "none" and finetune.mask.text.kind == "none"
    assert finetune.init.required and not finetune.init.strict
    assert tuple(finetune.evals.pair_matching.modalities) == ("both", "text_only", "image_only")


def test_the_ablation_table_fine_tunes_every_row_and_varies_mdo_where_the_paper_does():
    from mvl.tables.runner import load_table, plan

    table = load_table("configs/tables/mlim_ablations.py")
    runs = plan(table, "demo", seeds=1, workdir="/tmp/unused")
    by_row = {}
    for run in runs:
        by_row.setdefault(run.row, {})[run.stage] = run
    assert all(set(stages) == {"pretrain", "finetune"} for stages in by_row.values())
    mdo = "mask.modality_dropout.probabilities"
    assert by_row["FT without MDO"]["finetune"].overrides[mdo] == "(0.0, 0.0, 1.0)"
    assert mdo not in by_row["FT without MDO"]["pretrain"].overrides
    assert mdo not in by_row["MLM+RECON, MAM; FT with MDO"]["finetune"].overrides
    assert by_row["MDO in pretraining too"]["pretrain"].overrides[mdo] == "(0.1, 0.1, 0.8)"


def test_recon_reductions_have_the_hand_computed_scale():
    from mvl.objectives.recon import pixel_weights, recon_loss

    images = jnp.zeros((2, 4, 4, 3))
    predicted = jnp.full((2, 4, 4, 3), 0.5)  # every squared error 0.25
    hidden = jnp.array([[True, False, False, False], [True, True, False, False]])
    weights = pixel_weights(hidden, grid=2, patch_size=2)  # 4 and 8 hidden pixels
    keep = jnp.array([True, True])
    # per-image SSE: 4 * 3 * 0.25 = 3 and 8 * 3 * 0.25 = 6
    expected = {
        "sum_per_image": (3.0 + 6.0) / 2,  # 4.5
        "sse_mean_over_pixels": (3.0 + 6.0) / 12,  # 0.75 = 3 channels x 0.25
        "mean_over_values": (3.0 + 6.0) / 36,  # 0.25
    }
    for reduction, value in expected.items():
        loss, metrics = recon_loss(predicted, images, weights, keep, reduction)
        assert float(loss) == pytest.approx(value), reduction
        assert float(metrics["mse"]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="objectives.recon.reduction='per_patch'"):
        recon_loss(predicted, images, weights, keep, "per_patch")


def test_pair_match_loss_is_sigmoid_cross_entropy_over_the_off_diagonal_pairs():
    from mvl.objectives.pair_match import combined_classes, pair_match_loss

    embeddings = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    classes = combined_classes(
        {"text": jnp.zeros((3, 4)), "shape": jnp.array([1, 1, 0]), "colour": jnp.array([2, 2, 2])},
        ("shape", "colour"),
    )
    assert classes[0] == classes[1] != classes[2]
    loss, metrics = pair_match_loss(embeddings, jnp.log(2.0), -1.0, classes)
    log_sigmoid = jax.nn.log_sigmoid
    # logits 2 * cosine - 1: pair (0,1) 0.2 matching, (0,2) -1 and (1,2) 0.6 not.
    by_hand = -(log_sigmoid(0.2) + log_sigmoid(1.0) + log_sigmoid(-0.6)) / 3
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)
    assert float(metrics["positive_rate"]) == pytest.approx(1 / 3)


def test_pair_matching_needs_labels_that_the_source_provides(tiny_config):
    from mvl import validate

    cfg = tiny_config("mlim_pair_matching", **{"objectives.pair_match.labels": "('size',)"})
    with pytest.raises(ValueError, match="objectives.pair_match.labels"):
        validate.validate(cfg, 8)


def test_objective_grad_norms_equal_an_independent_gradient_norm(tiny_config):
    from mvl import mask, objectives
    from mvl.data.special_tokens import SENTENCEPIECE
    from mvl.models.model import build_model
    from mvl.train.forward import Forward
    from mvl.train.objective_grad_norms import make_objective_grad_norms
    from mvl.train.state import init_params

    cfg = tiny_config("mlim", **{"objectives.mlm.weight": "2.0"})
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = jax.jit(lambda key: init_params(model, cfg, key))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    batch = {
        "image": jnp.asarray(rng.uniform(size=(16, 32, 32, 3)), jnp.float32),
        "text": jnp.asarray(rng.integers(6, 128, size=(16, 24)), jnp.int32),
    }
    mask_rng, objective_rng = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
    norms = make_objective_grad_norms(model, cfg)(params, batch, mask_rng, objective_rng)
    assert set(norms) == {"grad_norm/mlm", "grad_norm/recon"}

    def reference(name, weight):
        def loss(p):
            masks = mask.make_masks(cfg, batch, mask_rng, model.vocab_size, model.special)
            forward = Forward(model, p, batch, masks, objective_rng)
            return weight * objectives.get(name).loss(forward, cfg.objectives[name])[0]

        grads = jax.grad(loss)(params)
        return float(np.sqrt(sum(np.sum(np.square(g)) for g in jax.tree.leaves(grads))))

    mlm, recon = reference("mlm", 2.0), reference("recon", 1.0)
    assert float(norms["grad_norm/mlm"]) == pytest.approx(mlm, rel=1e-4)
    assert float(norms["grad_norm/recon"]) == pytest.approx(recon, rel=1e-4)
    assert mlm > 0 and recon > 0 and mlm != pytest.approx(recon)


@pytest.mark.slow(minutes=3)
def test_finetune_stage_trains_the_pair_head_from_pretraining_and_logs_grad_norms(
    tokenizer_path, tmp_path
):
    from mvl import main as mvl_main
    from mvl.tables.tensorboard_scalars import read_scalars
    from tests.test_main import main_args

    pretrain = tmp_path / "pretrain"
    args = main_args(
        tokenizer_path,
        pretrain,
        "mlim",
        total_steps=2,
        objective_grad_norm_every=1,
        log_every_steps=1,
    )
    assert mvl_main.main(args) == 0
    scalars = read_scalars(str(pretrain), skip_tags=("reconstructions",))
    for name in ("mlm", "recon"):
        logged = scalars[f"train/grad_norm/{name}"]
        assert sorted(logged) == [1, 2] and all(v > 0 for v in logged.values())

    finetune = tmp_path / "finetune"
    args = main_args(
        tokenizer_path,
        finetune,
        "mlim_pair_matching",
        total_steps=2,
        **{"init.checkpoint": str(pretrain)},
    )
    assert mvl_main.main(args) == 0
    final = json.loads((finetune / "eval_final.json").read_text())
    for mode in ("both", "text_only", "image_only"):
        assert 0.0 < final[f"pair_matching/{mode}/average_precision"] <= 1.0
    assert "train/pair_match/loss" in read_scalars(str(finetune))
