"""The train_step end to end: sharding equivalence, resume, learning, and the model's
parameter metadata. Tiny configs keep each compile to seconds."""

import ast
import glob
import os

import flax.linen as nn
import jax
import numpy as np
import pytest

from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models.model import build_model
from mvl.train import optim
from mvl.train.loop import Trainer
from mvl.train.state import init_params


def run_steps(trainer: Trainer, count: int) -> list[dict]:
    return [jax.device_get(trainer.step(trainer.next_batch())) for _ in range(count)]


MESHES = {
    "data_parallel": {"data": "8"},
    "fsdp": {"fsdp": "8"},
    "tensor_parallel": {"data": "4", "tensor": "2"},  # tiny models have 2 heads
    "data_fsdp_tensor": {"data": "2", "fsdp": "2", "tensor": "2"},
}


@pytest.mark.parametrize(
    "method",
    [
        pytest.param("maskvlm", marks=pytest.mark.slow(minutes=6)),
        pytest.param("maskclip", marks=pytest.mark.slow(minutes=4)),
    ],
)
def test_eight_devices_match_one_device_at_every_mesh_shape(tiny_config, tmp_path, method):
    """Losses of 3 steps and the parameters after them: 8 devices vs 1, 1e-5 relative."""
    single = Trainer(
        tiny_config(method, **{"mesh.data": "1"}), str(tmp_path / "one"), devices=jax.devices()[:1]
    )
    expected = run_steps(single, 3)
    expected_params = jax.device_get(single.state.params)
    for name, mesh in MESHES.items():
        overrides = {"mesh.data": "1", "mesh.fsdp": "1", "mesh.tensor": "1"}
        overrides.update({f"mesh.{axis}": size for axis, size in mesh.items()})
        sharded = Trainer(tiny_config(method, **overrides), str(tmp_path / name))
        assert sharded.mesh.devices.size == 8
        actual = run_steps(sharded, 3)
        for key in (k for k in expected[0] if k.endswith("loss")):
            for step in range(3):
                np.testing.assert_allclose(
                    actual[step][key],
                    expected[step][key],
                    rtol=1e-5,
                    err_msg=f"{name}: {key} at step {step}",
                )
        # Attention key biases are skipped: softmax ignores a shift shared by all keys,
        # so their gradient is zero up to rounding, and Adam (eps 1e-8 in MaskCLIP)
        # turns that rounding noise into lr-sized steps of random sign. They never change
        # an output. atol covers other zero-initialised entries at rounding level.
        actual_params = jax.device_get(sharded.state.params)
        for path, value in jax.tree_util.tree_leaves_with_path(actual_params):
            key = jax.tree_util.keystr(path, simple=True, separator="/")
            if not key.endswith("key/bias"):
                reference = expected_params
                for part in key.split("/"):
                    reference = reference[part]
                np.testing.assert_allclose(
                    value, reference, rtol=1e-5, atol=1e-5, err_msg=f"{name}: {key}"
                )


@pytest.mark.slow(minutes=1)
def test_resume_gives_the_same_next_loss(tiny_config, tmp_path):
    cfg = tiny_config(**{"checkpoint.every_steps": "2"})
    uninterrupted = Trainer(cfg, str(tmp_path / "a"))
    reference = run_steps(uninterrupted, 3)

    first = Trainer(cfg, str(tmp_path / "b"))
    run_steps(first, 2)
    assert first.save()
    first.checkpointer.wait()
    resumed = Trainer(cfg, str(tmp_path / "b"))
    assert resumed.restore()[0] == 2
    next_loss = run_steps(resumed, 1)[0]["loss"]
    np.testing.assert_allclose(next_loss, reference[2]["loss"], rtol=1e-6)


def test_a_short_run_lowers_the_loss(tiny_config, tmp_path):
    cfg = tiny_config("clip", **{"optim.lr": "3e-3", "total_steps": "40"})
    trainer = Trainer(cfg, str(tmp_path))
    losses = [m["loss"] for m in run_steps(trainer, 40)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


@pytest.mark.parametrize(
    "method, overrides",
    [
        ("maskvlm", {}),
        ("maskvlm", {"model.image.stem": "conv"}),
        ("maskvlm", {"model.scan_layers": "true"}),
        ("mlim", {}),
        ("maskclip", {}),
    ],
)
def test_every_parameter_has_logical_axis_names(tiny_config, method, overrides):
    cfg = tiny_config(method, **overrides)
    model = build_model(cfg, 128, SENTENCEPIECE)
    boxed = jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0)))
    leaves = jax.tree_util.tree_leaves_with_path(
        boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)
    )
    assert len(leaves) > 50
    for path, leaf in leaves:
        assert isinstance(leaf, nn.LogicallyPartitioned), jax.tree_util.keystr(path)
        assert len(leaf.names) == len(leaf.value.shape), jax.tree_util.keystr(path)


def test_each_config_builds_exactly_the_parts_its_objectives_need(tiny_config):
    def parts(method):
        return build_model(tiny_config(method), 128, SENTENCEPIECE).parts

    towers = {"image", "text", "image_projection", "text_projection"}
    assert parts("maskvlm") == towers | {
        "temperature",
        "image_fusion",
        "text_fusion",
        "itm_head",
        "pixel_decoder",
        "mlm_head",
    }
    assert parts("clip") == towers | {"temperature"}
    assert parts("siglip") == towers | {"sigmoid"}
    assert parts("mae") == {"image", "pixel_decoder"}
    assert parts("mlim") == {"single_stream", "deconv_decoder", "mlm_head"}
    assert parts("maskclip") == towers | {
        "temperature",
        "feature_decoder",
        "codebook",
        "text_decoder",
        "mlm_head",
    }
    assert parts("mvp") == {"image", "feature_head"}


@pytest.mark.parametrize("path", sorted(glob.glob("configs/*.py")))
def test_parameter_paths_of_every_demo_config_are_those_checkpoints_hold(tiny_config, path):
    """The paths and shapes recorded before objectives owned their heads
    (tests/fixtures/param_paths.json): checkpoints written then still load."""
    import json

    method = os.path.basename(path)[: -len(".py")]
    with open("tests/fixtures/param_paths.json") as f:
        expected = json.load(f)[method]
    cfg = tiny_config(method)
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = nn.unbox(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))
    found = sorted(
        "/".join(str(key.key) for key in keys) + f":{tuple(leaf.shape)}"
        for keys, leaf in jax.tree_util.tree_leaves_with_path(params)
    )
    assert found == expected


def test_weight_decay_spares_biases_norms_embeddings_and_temperature(tiny_config):
    cfg = tiny_config()
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = nn.unbox(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))
    mask = {
        jax.tree_util.keystr(p, simple=True, separator="/"): v
        for p, v in jax.tree_util.tree_leaves_with_path(optim.decay_mask(params))
    }
    assert mask["image/encoder/block0/mlp/fc1/kernel"]
    assert mask["text/encoder/block0/self_attn/query/kernel"]
    for spared in (
        "image/encoder/block0/mlp/fc1/bias",
        "image/encoder/ln_final/LayerNorm_0/scale",
        "text/token_embedding/embedding",
        "image/pos_embedding",
        "image/cls_token",
        "image/mask_token",
        "temperature/logit_scale",
    ):
        assert not mask[spared], spared


def test_gradient_accumulation_matches_one_batch_four_times_larger(tiny_config, tmp_path):
    # MAE's loss averages over a fixed number of hidden patches per example, so four
    # slices of 4 must give the update of one batch of 16 (masks are drawn for the batch).
    whole = Trainer(tiny_config("mae"), str(tmp_path / "whole"))
    sliced = Trainer(tiny_config("mae", **{"optim.microbatches": "4"}), str(tmp_path / "sliced"))
    for _ in range(2):
        batch = whole.next_batch()
        a, b = jax.device_get(whole.step(batch)), jax.device_get(sliced.step(batch))
        for key in ("loss", "grad_norm"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7),
        jax.device_get(whole.state.params),
        jax.device_get(sliced.state.params),
    )


@pytest.mark.parametrize(
    "method, overrides, named",
    [
        ("mae", {"optim.microbatches": "3"}, "optim.microbatches=3: must divide batch_size 16"),
        ("clip", {"model.image.patch_size": "7"}, "model.image.patch_size=7: must divide"),
        ("maskvlm", {"model.fusion.num_heads": "5"}, "model.fusion.num_heads=5: must divide"),
        ("flip", {"mask.image.ratio": "1.5"}, "mask.image.ratio=1.5: must be in [0.0, 1.0]"),
        ("mlim", {"mask.modality_dropout.probabilities": "(0.5, 0.6, 0.0)"}, "must sum to 1"),
        ("clip", {"mesh.data": "3"}, "divide the 8 devices"),
        ("clip", {"mesh.data": "8", "batch_size": "12"}, "batch_size=12: must be divisible"),
        ("mvp", {"teacher.image.patch_size": "16"}, "teacher's patch grid (2) must match"),
        ("clip", {"model.dtype": "float16"}, "model.dtype='float16': must be one of"),
        ("clip", {"optim.lr": "0"}, "optim.lr=0.0: must be > 0"),
    ],
)
def test_bad_config_values_are_named_before_anything_is_built(
    tiny_config, tmp_path, method, overrides, named
):
    from mvl.config import ConfigError

    with pytest.raises(ConfigError) as error:
        Trainer(tiny_config(method, **overrides), str(tmp_path))
    assert named in str(error.value)


@pytest.mark.slow(minutes=1.5)
def test_remat_recomputes_the_same_gradients_and_bfloat16_stays_close(tiny_config, tmp_path):
    method = "maskvlm"  # every kind of transformer stack: towers, fusion, pixel decoder
    from mvl.train.step import compute_losses

    reference = Trainer(tiny_config(method), str(tmp_path))
    params, batch, rng = reference.state.params, reference.next_batch(), jax.random.PRNGKey(1)

    def loss_and_grads(**overrides):
        model = build_model(tiny_config(method, **overrides), reference.vocab_size, SENTENCEPIECE)

        def loss(p):
            return compute_losses(model, reference.cfg, p, batch, rng, rng)[0]

        return jax.device_get(jax.jit(jax.value_and_grad(loss))(params))

    base_loss, base_grads = loss_and_grads()
    remat_loss, remat_grads = loss_and_grads(**{"model.remat": "full"})
    assert remat_loss == pytest.approx(base_loss, rel=1e-6)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), base_grads, remat_grads
    )
    bf16_loss, bf16_grads = loss_and_grads(**{"model.dtype": "bfloat16"})
    assert bf16_loss == pytest.approx(base_loss, rel=3e-2)
    assert all(g.dtype == np.float32 for g in jax.tree.leaves(bf16_grads))  # fp32 params


@pytest.mark.parametrize("path", sorted(glob.glob("configs/*.py")))
def test_every_config_loads_at_both_sizes_and_documents_its_command(path):
    from mvl import config as config_lib
    from mvl import validate

    module_doc = ast.get_docstring(ast.parse(open(path).read())) or ""
    assert f"python -m mvl.main --config {path}" in module_doc, "docstring lacks its command"
    assert "reach" in module_doc, "docstring does not say what the config should reach"
    for size in ("demo", "paper"):
        cfg = config_lib.load_config(f"{path}:{size}")
        if cfg.init.required:  # a fine-tuning stage: refused until told what to start from
            with pytest.raises(config_lib.ConfigError, match="init.checkpoint"):
                validate.validate(cfg, num_devices=8)
            cfg.init.checkpoint = "/path/to/pretraining/workdir"
        validate.validate(cfg, num_devices=8)
        model = build_model(cfg, cfg.data.vocab_size, SENTENCEPIECE)
        assert model.parts, (path, size)


def stack_blocks(tree):
    """Unrolled params (block0, block1, ...) -> the scanned layout (blocks/block, stacked)."""
    if not isinstance(tree, dict):
        return tree
    count = sum(1 for key in tree if key.startswith("block") and key[5:].isdigit())
    out = {k: stack_blocks(v) for k, v in tree.items() if not k[5:].isdigit() or count == 0}
    if count:
        layers = [tree[f"block{i}"] for i in range(count)]
        out["blocks"] = {"block": jax.tree.map(lambda *xs: np.stack(xs), *layers)}
    return out


def test_scanned_layers_compute_what_unrolled_layers_do(tiny_config, tmp_path):
    from mvl.train.step import compute_losses

    deeper = {"model.image.depth": "2", "model.text.depth": "2"}
    unrolled = Trainer(tiny_config("maskvlm", **deeper), str(tmp_path))
    scan_cfg = tiny_config("maskvlm", **deeper, **{"model.scan_layers": "true"})
    scanned_model = build_model(scan_cfg, unrolled.vocab_size, SENTENCEPIECE)
    params = stack_blocks(jax.device_get(unrolled.state.params))
    shapes = jax.eval_shape(lambda: init_params(scanned_model, scan_cfg, jax.random.PRNGKey(0)))
    expected = jax.tree.map(lambda x: x.shape, nn.unbox(shapes))
    assert jax.tree.map(lambda x: x.shape, params) == expected
    batch, rng = unrolled.next_batch(), jax.random.PRNGKey(2)

    def loss(model, p):
        return compute_losses(model, scan_cfg, p, batch, rng, rng)[0]

    reference = float(jax.jit(lambda p: loss(unrolled.model, p))(unrolled.state.params))
    assert float(jax.jit(lambda p: loss(scanned_model, p))(params)) == pytest.approx(
        reference, rel=1e-5
    )
