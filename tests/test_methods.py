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
