"""Each method's `:paper` config is its paper's recipe (docs/methods.md has the sources):
the key values, a config that validates on a device count its mesh fits, none left on
the old shared recipe; epochs and batch-scaled lr follow batch_size; what weight decay
skips; drop path and layer scale in the image tower."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from mvl import config as config_lib
from mvl import validate
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models.model import build_model
from mvl.train import optim
from mvl.train.state import init_params

IN1K = 1_281_167
LAION = 400_000_000

# method -> {dotted key: value} of its :paper recipe.
EXPECTED = {
    "clip": {
        "batch_size": 32768,
        "total_steps": 32 * LAION // 32768,
        "epochs": 32.0,
        "data.num_examples": LAION,
        "optim.lr": 5e-4,
        "optim.warmup_steps": 2000,
        "optim.b1": 0.9,
        "optim.b2": 0.98,
        "optim.eps": 1e-6,
        "optim.weight_decay": 0.2,
        "optim.weight_decay_applies_to": "all_but_gains_and_biases",
        "optim.end_lr_factor": 0.0,
        "data.image_size": 224,
        "data.tokenizer_kind": "clip_bpe",
        "data.vocab_size": 49408,
        "data.max_text_len": 77,
        "model.image.width": 768,
        "model.image.depth": 12,
        "model.image.num_heads": 12,
        "model.image.patch_size": 16,
        "model.text.width": 512,
        "model.text.depth": 12,
        "model.text.num_heads": 8,
        "model.text.causal": True,
        "model.text.pool": "last",
        "model.embed_dim": 512,
        "model.init_temperature": 0.07,
        "objectives.itc.max_scale": 100.0,
        "data.crop": "random_resized",
        "data.crop_scale": (0.9, 1.0),
        "data.flip": False,
    },
    "siglip": {
        "batch_size": 32768,
        "optim.lr": 1e-3,
        "optim.weight_decay": 1e-4,
        "optim.b2": 0.95,
        "data.tokenizer_kind": "sentencepiece",
        "data.vocab_size": 32000,
        "data.max_text_len": 16,
        "model.text.width": 768,
        "model.embed_dim": 768,
        "data.crop": "centre",
        "data.flip": False,
    },
    "flip": {
        "batch_size": 32768,
        "epochs": 32.0,
        "data.num_examples": LAION,
        "optim.base_lr": 4e-6,
        "optim.lr": 4e-6 * 32768 / 256,
        "optim.b1": 0.9,
        "optim.b2": 0.95,
        "optim.weight_decay": 0.2,
        "optim.weight_decay_applies_to": "kernels",
        "optim.warmup_steps": 20 * IN1K // 32768,
        "mask.image.ratio": 0.5,
        "mask.image.drop": True,
        "data.max_text_len": 32,
        "model.text.width": 512,
        "model.text.num_heads": 8,
        "data.crop_scale": (0.5, 1.0),
        "data.flip": True,
    },
    "mae": {
        "batch_size": 4096,
        "epochs": 800.0,
        "data.num_examples": IN1K,
        "total_steps": 800 * IN1K // 4096,
        "optim.warmup_steps": 40 * IN1K // 4096,
        "optim.lr": 1.5e-4 * 4096 / 256,
        "optim.b1": 0.9,
        "optim.b2": 0.95,
        "optim.weight_decay": 0.05,
        "mask.image.ratio": 0.75,
        "mask.image.drop": True,
        "model.pixel_decoder.width": 512,
        "model.pixel_decoder.depth": 8,
        "model.pixel_decoder.num_heads": 16,
        "data.crop": "random_resized",
        "data.crop_scale": (0.2, 1.0),
        "data.flip": True,
        "data.image_size": 224,
    },
    "mvp": {
        "batch_size": 2048,
        "epochs": 300.0,
        "total_steps": 300 * IN1K // 2048,
        "optim.warmup_steps": 10 * IN1K // 2048,
        "optim.lr": 1.5e-3,
        "optim.b2": 0.98,
        "optim.weight_decay": 0.05,
        "mask.image.kind": "beit",
        "mask.image.ratio": 0.4,
        "model.image.drop_path": 0.1,
        "model.image.layer_scale": 0.1,
        "teacher.kind": "frozen",
        "teacher.image.pre_norm": True,
        "data.flip": True,
    },
    "maskclip": {
        "batch_size": 4096,
        "epochs": 25.0,
        "data.num_examples": 15_000_000,
        "optim.warmup_steps": 15_000_000 // 4096,
        "optim.lr": 5e-4,
        "optim.weight_decay": 0.5,
        "optim.b2": 0.98,
        "optim.eps": 1e-8,
        "data.max_text_len": 77,
        "model.text.width": 512,
        "model.text.num_heads": 8,
        "model.text.depth": 12,
        "data.vocab_size": 49408,
        "mask.image.ratio": 0.75,
        "teacher.kind": "ema",
        "teacher.momentum": 0.996,
        "objectives.distill.weight": 0.05,
        "objectives.mlm.weight": 0.05,
        "data.crop_scale": (0.5, 1.0),
    },
    "maskvlm": {
        "batch_size": 512,
        "epochs": 30.0,
        "data.num_examples": 5_100_000,
        "total_steps": 30 * 5_100_000 // 512,
        "optim.lr": 1e-4,
        "optim.warmup_steps": 1000,
        "optim.end_lr_factor": 0.1,
        "optim.weight_decay": 0.02,
        "data.image_size": 256,
        "data.vocab_size": 50265,
        "model.text.width": 768,
        "model.text.depth": 12,
        "model.fusion.depth": 3,
        "model.embed_dim": 256,
        "mask.image.ratio": 0.6,
        "mask.text.ratio": 0.3,
        "data.crop_scale": (0.2, 1.0),
    },
    "mlim": {
        "batch_size": 256,
        "total_steps": 1_000_000,
        "optim.warmup_steps": 10_000,
        "optim.weight_decay": 0.01,
        "model.single_stream.width": 768,
        "model.single_stream.depth": 12,
        "mask.modality_aware.heavy_ratio": 0.8,
    },
}
COMPOSITIONS = {  # composition -> the method whose recipe it follows
    "clip_mae": "flip",
    "maskvlm_ema": "maskvlm",
    "maskvlm_mvp": "maskvlm",
    "siglip_mvp": "siglip",
}
SCHEDULE_KEYS = ("batch_size", "epochs", "optim.lr", "optim.b2", "optim.weight_decay")
# The one recipe every :paper config shared before (mvl/config.py's old SIZES["paper"]).
OLD_GENERIC = {
    "batch_size": 512,
    "total_steps": 200_000,
    "optim.lr": 1e-4,
    "optim.warmup_steps": 2000,
    "data.vocab_size": 256,
    "model.embed_dim": 256,
}


def get(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return tuple(node) if isinstance(node, (list, tuple)) else node


def paper(name: str):
    return config_lib.load_config(f"configs/{name}.py:paper")


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_paper_config_is_the_papers_recipe(method):
    cfg = paper(method)
    for key, value in EXPECTED[method].items():
        actual = get(cfg, key)
        if isinstance(value, float):
            assert actual == pytest.approx(value, rel=1e-9), key
        else:
            assert actual == value, key


@pytest.mark.parametrize("name", sorted(EXPECTED) + sorted(COMPOSITIONS) + ["retrieval_finetune"])
def test_paper_configs_validate_and_left_the_old_generic_recipe(name):
    cfg = paper(name)
    if name == "retrieval_finetune":
        cfg.unlock()
        cfg.init.checkpoint = "/pretrained/run"
    validate.validate(cfg, num_devices=8)
    assert {key: get(cfg, key) for key in OLD_GENERIC} != OLD_GENERIC


@pytest.mark.parametrize("composition", sorted(COMPOSITIONS))
def test_compositions_follow_the_recipe_they_name(composition):
    cfg, base = paper(composition), paper(COMPOSITIONS[composition])
    for key in SCHEDULE_KEYS:
        assert get(cfg, key) == get(base, key), key


def test_a_paper_size_without_a_recipe_is_refused():
    cfg = config_lib.base_config("paper")
    with pytest.raises(config_lib.ConfigError, match="batch_size=None: unset"):
        validate.validate(cfg)


def test_steps_warmup_and_lr_follow_batch_size_and_epochs():
    cfg = paper("mae")
    config_lib.apply_overrides(cfg, {"batch_size": "1024"})
    assert cfg.total_steps == 800 * IN1K // 1024
    assert cfg.optim.warmup_steps == 40 * IN1K // 1024
    assert cfg.optim.lr == pytest.approx(1.5e-4 * 1024 / 256)
    config_lib.apply_overrides(cfg, {"epochs": "400", "total_steps": "7"})
    assert cfg.total_steps == 7  # an explicit total_steps wins over epochs
    cfg = paper("mae")
    config_lib.apply_overrides(cfg, {"epochs": "400"})
    assert cfg.total_steps == 400 * IN1K // 4096


def test_the_demo_keeps_its_recipe():
    cfg = config_lib.load_config("configs/maskvlm.py:demo")
    assert (cfg.batch_size, cfg.total_steps, cfg.optim.lr, cfg.optim.warmup_steps) == (
        64,
        300,
        1e-3,
        30,
    )
    assert (cfg.data.crop, cfg.data.flip, cfg.data.augment) == ("centre", False, True)
    assert cfg.optim.weight_decay_applies_to == "kernels" and cfg.epochs == 0.0


def abstract_params(cfg, vocab=128):
    model = build_model(cfg, vocab, SENTENCEPIECE)
    return nn.unbox(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))


def test_all_but_gains_and_biases_decays_embeddings_and_spares_1d_parameters(tiny_config):
    params = abstract_params(tiny_config("clip"))
    mask = {
        jax.tree_util.keystr(p, simple=True, separator="/"): v
        for p, v in jax.tree_util.tree_leaves_with_path(
            optim.decay_mask(params, "all_but_gains_and_biases")
        )
    }
    for decayed in (
        "image/encoder/block0/mlp/fc1/kernel",
        "text/token_embedding/embedding",
        "image/pos_embedding",
        "image/cls_token",
    ):
        assert mask[decayed], decayed
    for spared in (
        "image/encoder/block0/mlp/fc1/bias",
        "image/encoder/ln_final/LayerNorm_0/scale",
        "temperature/logit_scale",
    ):
        assert not mask[spared], spared
    with pytest.raises(ValueError, match="weight_decay_applies_to='everything'"):
        optim.decay_mask(params, "everything")


@pytest.mark.parametrize("scan", ["false", "true"])
def test_layer_scale_and_drop_path_act_in_training_only(tiny_config, scan):
    cfg = tiny_config(
        "mae",
        **{
            "model.image.drop_path": "0.5",
            "model.image.layer_scale": "0.1",
            "model.image.depth": "2",
            "model.scan_layers": scan,
        },
    )
    model = build_model(cfg, 128, SENTENCEPIECE)
    images = jax.random.uniform(jax.random.PRNGKey(1), (4, 32, 32, 3))
    params = init_params(model, cfg, jax.random.PRNGKey(0))
    scales = [
        leaf
        for path, leaf in jax.tree_util.tree_leaves_with_path(nn.unbox(params))
        if "layer_scale" in jax.tree_util.keystr(path)
    ]
    assert scales and all(np.allclose(s, 0.1) for s in scales)

    def encode(rngs=None):
        return model.apply({"params": params}, images, method="encode_image", rngs=rngs)

    np.testing.assert_array_equal(encode(), encode())  # evaluation: deterministic
    first = encode({"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(first, encode())  # training drops branches ...
    assert not np.allclose(first, encode({"dropout": jax.random.PRNGKey(3)}))  # ... by rng


def test_a_run_trains_with_drop_path_layer_scale_crop_and_flip(tiny_config, tmp_path):
    """The paper-recipe mechanisms together in real train steps (MVP-like, on MAE)."""
    from mvl.train.loop import Trainer

    cfg = tiny_config(
        "mae",
        **{
            "model.image.drop_path": "0.1",
            "model.image.layer_scale": "0.1",
            "data.crop": "random_resized",
            "data.crop_scale": "(0.2, 1.0)",
            "data.flip": "true",
            "optim.weight_decay_applies_to": "all_but_gains_and_biases",
        },
    )
    trainer = Trainer(cfg, str(tmp_path))
    losses = [float(jax.device_get(trainer.step(trainer.next_batch()))["loss"]) for _ in range(3)]
    assert all(np.isfinite(losses)), losses


def test_an_ema_teacher_must_be_the_students_tower():
    cfg = config_lib.load_config("configs/maskclip.py:demo")
    config_lib.apply_overrides(cfg, {"model.image.layer_scale": "0.1"})
    with pytest.raises(config_lib.ConfigError, match="teacher.image.layer_scale=0.0"):
        validate.validate(cfg)
