"""Methods beyond MaskVLM on the same train_step: SigLIP, FLIP (token dropping), MAE."""

import json

import jax
import numpy as np
import pytest

from mvl import main as mvl_main
from mvl.models.model import build_model
from mvl.train.loop import Trainer
from tests.test_main import main_args


@pytest.mark.parametrize("method", ["siglip", "flip", "mae"])
def test_method_trains_and_its_loss_falls(tiny_config, tmp_path, method):
    trainer = Trainer(tiny_config(method, **{"optim.lr": "3e-3"}), str(tmp_path))
    losses = [float(trainer.step(trainer.next_batch())["loss"]) for _ in range(16)]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses


def test_flip_encodes_only_the_visible_tokens(tiny_config):
    cfg = tiny_config("flip")  # 32 px, 8 px patches: 16 patches, half dropped
    model = build_model(cfg, 128)
    assert model.image_keep_count == 8 and not model.image_mask_token
    params = jax.jit(model.init)(
        jax.random.PRNGKey(0), np.zeros((2, 32, 32, 3)), np.zeros((2, 24), np.int32)
    )
    keep = np.array([[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]])
    tokens = model.apply(params, np.zeros((2, 32, 32, 3)), None, keep, method="encode_image")
    assert tokens.shape == (2, 1 + 8, cfg.model.image.width)


def test_mae_runs_end_to_end_with_held_out_reconstruction_loss(tokenizer_path, tmp_path):
    workdir = tmp_path / "mae"
    assert mvl_main.main(main_args(tokenizer_path, workdir, "mae", total_steps=2)) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    assert set(final) == {"held_out/loss", "held_out/mim/loss"}
    assert np.isfinite(final["held_out/mim/loss"])
    assert list(workdir.glob("reconstructions_*.png"))


def test_flip_unmasked_tuning_starts_from_the_flip_run(tiny_config, tmp_path):
    flip = Trainer(tiny_config("flip"), str(tmp_path / "flip"))
    for _ in range(2):
        flip.step(flip.next_batch())
    assert flip.save()
    flip.checkpointer.wait()

    tune_cfg = tiny_config("flip", "demo,tune", **{"init.checkpoint": str(tmp_path / "flip")})
    assert tune_cfg.mask.image.kind == "none" and not tune_cfg.objectives.itc.masked_image
    tuned = Trainer(tune_cfg, str(tmp_path / "tuned"))
    assert tuned.restore() == 0  # a fresh run: step 0, parameters from the FLIP run
    same = jax.tree.map(np.array_equal, tuned.state.params, flip.state.params)
    assert all(jax.tree.leaves(same))
    assert np.isfinite(float(tuned.step(tuned.next_batch())["loss"]))


def test_init_from_a_different_architecture_names_the_mismatch(tiny_config, tmp_path):
    from mvl.checkpoint import CheckpointMismatchError

    clip = Trainer(tiny_config("clip"), str(tmp_path / "clip"))
    assert clip.save()
    clip.checkpointer.wait()
    source = {"init.checkpoint": str(tmp_path / "clip"), "model.text.mlp_dim": "96"}
    with pytest.raises(CheckpointMismatchError, match="text/encoder/block0/mlp/fc1/kernel"):
        Trainer(tiny_config("clip", **source), str(tmp_path / "wider")).restore()
    partial = Trainer(
        tiny_config("clip", **source, **{"init.strict": "false"}), str(tmp_path / "p")
    )
    partial.restore()  # takes what matches: the whole image tower, for one
    np.testing.assert_array_equal(
        partial.state.params["image"]["pos_embedding"], clip.state.params["image"]["pos_embedding"]
    )
