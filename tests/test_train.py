"""The train_step end to end: sharding equivalence, resume, learning, and the model's
parameter metadata. Tiny configs keep each compile to seconds."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from mvl.models.model import build_model
from mvl.train import optim
from mvl.train.loop import Trainer


def run_steps(trainer: Trainer, count: int) -> list[dict]:
    return [jax.device_get(trainer.step(trainer.next_batch())) for _ in range(count)]


@pytest.mark.parametrize(
    "mesh",
    [{"data": "8"}, {"fsdp": "8"}, {"data": "2", "fsdp": "2", "tensor": "2"}],
    ids=["data_parallel", "fsdp", "data_fsdp_tensor"],
)
def test_eight_devices_match_one_device(tiny_config, tmp_path, mesh):
    single = Trainer(
        tiny_config(**{"mesh.data": "1"}), str(tmp_path / "one"), devices=jax.devices()[:1]
    )
    overrides = {"mesh.data": "1", "mesh.fsdp": "1", "mesh.tensor": "1"}
    overrides.update({f"mesh.{axis}": size for axis, size in mesh.items()})
    sharded = Trainer(tiny_config(**overrides), str(tmp_path / "eight"))
    assert sharded.mesh.devices.size == 8
    expected, actual = run_steps(single, 2), run_steps(sharded, 2)
    for name in ("loss", "itc/loss", "itm/loss", "mlm/loss", "mim/loss"):
        for step in range(2):
            np.testing.assert_allclose(
                actual[step][name],
                expected[step][name],
                rtol=1e-5,
                err_msg=f"{name} at step {step}",
            )


def test_resume_gives_the_same_next_loss(tiny_config, tmp_path):
    cfg = tiny_config(**{"checkpoint.every_steps": "2"})
    uninterrupted = Trainer(cfg, str(tmp_path / "a"))
    reference = run_steps(uninterrupted, 3)

    first = Trainer(cfg, str(tmp_path / "b"))
    run_steps(first, 2)
    assert first.save()
    first.checkpointer.wait()
    resumed = Trainer(cfg, str(tmp_path / "b"))
    assert resumed.restore() == 2
    next_loss = run_steps(resumed, 1)[0]["loss"]
    np.testing.assert_allclose(next_loss, reference[2]["loss"], rtol=1e-6)


def test_a_short_run_lowers_the_loss(tiny_config, tmp_path):
    cfg = tiny_config("clip", **{"optim.lr": "3e-3", "total_steps": "40"})
    trainer = Trainer(cfg, str(tmp_path))
    losses = [m["loss"] for m in run_steps(trainer, 40)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


@pytest.mark.parametrize(
    "method, stem",
    [("maskvlm", "patch"), ("maskvlm", "conv"), ("mlim", "patch"), ("maskclip", "patch")],
)
def test_every_parameter_has_logical_axis_names(tiny_config, method, stem):
    cfg = tiny_config(method, **{"model.image.stem": stem})
    model = build_model(cfg, 128)
    boxed = jax.eval_shape(
        model.init,
        jax.random.PRNGKey(0),
        jax.numpy.zeros((1, 32, 32, 3)),
        jax.numpy.zeros((1, 24), int),
    )
    leaves = jax.tree_util.tree_leaves_with_path(
        boxed["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)
    )
    assert len(leaves) > 50
    for path, leaf in leaves:
        assert isinstance(leaf, nn.LogicallyPartitioned), jax.tree_util.keystr(path)
        assert len(leaf.names) == len(leaf.value.shape), jax.tree_util.keystr(path)


def test_each_config_builds_exactly_the_parts_its_objectives_need(tiny_config):
    def parts(method):
        return set(build_model(tiny_config(method), 128).components)

    towers = {"image", "text", "projections"}
    assert parts("maskvlm") == towers | {
        "temperature",
        "fusion",
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


def test_weight_decay_spares_biases_norms_embeddings_and_temperature(tiny_config):
    model = build_model(tiny_config(), 128)
    params = nn.unbox(
        jax.eval_shape(
            model.init,
            jax.random.PRNGKey(0),
            jax.numpy.zeros((1, 32, 32, 3)),
            jax.numpy.zeros((1, 24), int),
        )["params"]
    )
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
