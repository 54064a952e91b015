"""model.attention: the kernels give the XLA path's numbers (splash runs its Pallas
kernel in interpret mode on this CPU), and combinations a kernel cannot run fail in
one line at validation. cuDNN's kernel needs a GPU to run; tests/test_compile.py
compiles it for an H100 ahead of time."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from mvl import validate
from mvl.config import ConfigError
from mvl.config.mesh_section import DEFAULT_RULES
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models import attention
from mvl.models.model import build_model
from mvl.runtime import sharding
from mvl.train.state import init_params

HEADS, HEAD_DIM = 2, 8


def qkv(batch, length_q, length_k, seed=0):
    keys = jax.random.split(jax.random.key(seed), 3)
    q = jax.random.normal(keys[0], (batch, length_q, HEADS, HEAD_DIM))
    k = jax.random.normal(keys[1], (batch, length_k, HEADS, HEAD_DIM))
    v = jax.random.normal(keys[2], (batch, length_k, HEADS, HEAD_DIM))
    return q, k, v


def output_and_grads(implementation, q, k, v, valid, causal):
    def loss(q, k, v):
        out = attention.dot_product_attention(q, k, v, valid, causal, implementation)
        return jnp.sum(out * jnp.cos(out)), out  # a loss whose gradient depends on out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
    return out, grads


# Padded text (a caption of 1 token, one of 5, one with no padding), causal text,
# [CLS]-only queries over every key, and cross-attention with Lq != Lk.
CASES = {
    "padded_self": (20, 20, [1, 5, 20], False),
    "causal_self": (20, 20, None, True),
    "one_query": (1, 20, [3, 20, 7], False),
    "cross_padded": (9, 20, [20, 2, 11], False),
}


# Interpret mode is slow (~15 s a case on 2 busy cores): the two self-attention cases
# in the default suite, the rest with the slow tests.
SLOW_CASES = ("one_query", "cross_padded")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=[pytest.mark.slow(minutes=0.5)] if case in SLOW_CASES else [])
        for case in CASES
    ],
)
def test_splash_matches_xla_forward_and_backward(case):
    length_q, length_k, lengths, causal = CASES[case]
    q, k, v = qkv(3, length_q, length_k)
    valid = None if lengths is None else jnp.arange(length_k) < jnp.array(lengths)[:, None]
    with attention.interpret_kernels():
        out, grads = output_and_grads("splash", q, k, v, valid, causal)
    ref_out, ref_grads = output_and_grads("xla", q, k, v, valid, causal)
    np.testing.assert_allclose(out, ref_out, atol=2e-6)
    for name, grad, ref in zip("qkv", grads, ref_grads):
        np.testing.assert_allclose(grad, ref, atol=2e-5, err_msg=f"d{name}")
    if lengths is not None:  # the pad keys got no gradient: they were truly masked
        pads = ~valid[:, :, None, None]
        assert float(jnp.abs(jnp.where(pads, grads[1], 0)).max()) == 0.0


def test_splash_under_a_mesh_splits_batch_and_heads_like_the_activations():
    """Under the run's mesh the kernel runs per device in shard_map (XLA cannot split a
    Pallas call itself); the numbers stay the XLA path's."""
    q, k, v = qkv(4, 12, 12)
    valid = jnp.arange(12) < jnp.array([12, 3, 1, 8])[:, None]
    mesh = sharding.make_mesh(ml_collections.ConfigDict({"data": 2, "fsdp": 2, "tensor": 2}))
    run = jax.jit(lambda q, k, v, m: attention.dot_product_attention(q, k, v, m, False, "splash"))
    with jax.set_mesh(mesh), nn.logical_axis_rules(DEFAULT_RULES), attention.interpret_kernels():
        lowered = run.lower(q, k, v, valid).as_text()
        out = run(q, k, v, valid)
    assert "shard_map" in lowered or "sdy.manual_computation" in lowered
    ref = attention.dot_product_attention(q, k, v, valid, False, "xla")
    np.testing.assert_allclose(out, ref, atol=2e-6)


def losses(cfg, model, params, batch, masks):
    from mvl.train.forward import Forward
    from mvl.train.step import run_objectives

    return run_objectives(Forward(model, params, batch, masks, jax.random.PRNGKey(1)), cfg)


@pytest.mark.slow(minutes=5)
def test_every_stack_of_maskvlm_gives_the_same_losses_and_grads_with_splash(tiny_config):
    """Image and text towers (padded captions), both fusion encoders (image queries over
    padded text keys, text queries over patches) and the pixel decoder's cross-attention,
    through the real objectives."""
    from mvl import mask

    cfgs = {impl: tiny_config("maskvlm", **{"model.attention": impl}) for impl in ("xla", "splash")}
    models = {impl: build_model(cfg, 128, SENTENCEPIECE) for impl, cfg in cfgs.items()}
    cfg, model = cfgs["xla"], models["xla"]
    params = jax.jit(lambda key: init_params(model, cfg, key))(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    text = rng.integers(4, 128, (4, cfg.data.max_text_len)).astype(np.int32)
    for row, length in enumerate([3, 9, 24, 6]):  # real captions padded to max_text_len
        text[row, length:] = SENTENCEPIECE.pad
    batch = {
        "image": jnp.asarray(rng.random((4, 32, 32, 3)), jnp.float32),
        "text": jnp.asarray(text),
    }
    masks = mask.make_masks(cfg, batch, jax.random.PRNGKey(2), 128, SENTENCEPIECE)

    def total_and_grads(impl):
        def total(p):
            return losses(cfgs[impl], models[impl], p, batch, masks)

        return jax.jit(jax.value_and_grad(total, has_aux=True))(params)

    with attention.interpret_kernels():
        (_, splash_metrics), splash_grads = total_and_grads("splash")
    (_, xla_metrics), xla_grads = total_and_grads("xla")
    for key in xla_metrics:
        if key.endswith("loss"):
            np.testing.assert_allclose(
                splash_metrics[key], xla_metrics[key], rtol=1e-5, err_msg=key
            )
    flat = jax.tree_util.tree_leaves_with_path(xla_grads)
    other = dict(jax.tree_util.tree_leaves_with_path(splash_grads))
    # float32 rounding against the gradients' scale (a key bias's gradient is exactly 0
    # in theory: softmax ignores a shift shared by every key; both give ~1e-9 noise)
    scale = max(float(jnp.abs(grad).max()) for _, grad in flat)
    for path, grad in flat:
        np.testing.assert_allclose(
            other[path], grad, rtol=1e-4, atol=1e-6 * scale, err_msg=jax.tree_util.keystr(path)
        )


def attention_products(jaxpr) -> int:
    """Batched matrix products outside any Pallas kernel: the XLA path's scores and
    weighted values (projections, MLPs and ITC's similarities are unbatched; splash's
    per-row sum(dO * O) before its backward kernels has no free dimension)."""
    found = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = eqn.params["dimension_numbers"]
            lhs, rhs = (v.aval.ndim for v in eqn.invars[:2])
            lhs_free = lhs - len(lhs_contract) - len(lhs_batch)
            rhs_free = rhs - len(rhs_contract) - len(rhs_batch)
            found += bool(lhs_batch) and lhs_free > 0 and rhs_free > 0
        elif eqn.primitive.name != "pallas_call":
            for value in eqn.params.values():
                for item in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(item, jax.extend.core.ClosedJaxpr):
                        found += attention_products(item.jaxpr)
                    elif isinstance(item, jax.extend.core.Jaxpr):
                        found += attention_products(item)
    return found


def traced_step(cfg):
    """The jaxpr of the gradient of `cfg`'s objectives (traced only: nothing runs)."""
    from mvl import mask

    model = build_model(cfg, 128, SENTENCEPIECE)
    params = jax.eval_shape(lambda key: init_params(model, cfg, key), jax.random.key(0))
    batch = {
        "image": jnp.zeros((2, 32, 32, 3)),
        "text": jnp.full((2, cfg.data.max_text_len), 5, jnp.int32),
    }
    masks = mask.make_masks(cfg, batch, jax.random.PRNGKey(2), 128, SENTENCEPIECE)
    step = jax.grad(lambda p: losses(cfg, model, p, batch, masks)[0])
    return jax.make_jaxpr(step)(params).jaxpr


@pytest.mark.parametrize("method", ["maskvlm", "mlim"])
def test_every_attention_runs_the_configured_kernel(tiny_config, method):
    """With splash no attention product is left to XLA in any stack (towers, fusion,
    decoders, MLIM's single stream), forward or backward; with xla they are there."""
    xla = traced_step(tiny_config(method))
    splash = traced_step(tiny_config(method, **{"model.attention": "splash"}))
    assert attention_products(xla) > 0
    assert attention_products(splash) == 0


# Validation: one line naming model.attention and what is wrong ------------------------


def failure(cfg, platform=None) -> str:
    with pytest.raises(ConfigError) as raised:
        validate.validate(cfg, platform=platform)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("config model.attention=")
    return message


def test_cudnn_needs_bfloat16(tiny_config):
    cfg = tiny_config("clip", **{"model.attention": "cudnn"})  # TINY: float32
    assert "needs model.dtype=bfloat16" in failure(cfg)


def test_cudnn_needs_a_head_dim_it_has_a_kernel_for(tiny_config):
    odd = tiny_config(
        "clip",
        **{"model.attention": "cudnn", "model.dtype": "bfloat16", "model.text.num_heads": "8"},
    )  # text width 32 over 8 heads: head dim 4
    assert "model.text has head dim 4" in failure(odd)
    wide = tiny_config(
        "clip",
        **{
            "model.attention": "cudnn",
            "model.dtype": "bfloat16",
            "model.image.width": "512",
            "model.image.mlp_dim": "64",
            "model.image.num_heads": "2",
        },
    )  # head dim 256
    assert "model.image has head dim 256" in failure(wide)


def test_fusion_heads_are_checked_at_each_towers_width(tiny_config):
    cfg = tiny_config(
        "maskvlm",
        **{"model.attention": "cudnn", "model.dtype": "bfloat16", "model.fusion.num_heads": "8"},
    )
    assert "model.fusion (image queries) has head dim 4" in failure(cfg)


def test_each_kernel_refuses_the_other_platforms(tiny_config):
    good_cudnn = tiny_config("clip", **{"model.attention": "cudnn", "model.dtype": "bfloat16"})
    validate.validate(good_cudnn, platform="cuda")  # passes on a GPU
    validate.validate(good_cudnn)  # and when the platform is not known yet
    assert "runs on GPU only; these devices are cpu" in failure(good_cudnn, "cpu")
    assert "runs on GPU only; these devices are tpu" in failure(good_cudnn, "tpu")
    splash = tiny_config("clip", **{"model.attention": "splash"})
    validate.validate(splash, platform="tpu")
    assert "runs on TPU only; these devices are cuda" in failure(splash, "cuda")
    validate.validate(tiny_config("clip"), platform="cpu")  # xla runs anywhere


def test_an_unknown_kernel_is_named(tiny_config):
    cfg = tiny_config("clip", **{"model.attention": "flash"})
    assert "must be one of xla, cudnn, splash" in failure(cfg)


def test_a_training_run_on_cpu_refuses_splash_before_building(tiny_config, tmp_path):
    from mvl.train.loop import Trainer

    with pytest.raises(ConfigError, match=r"model.attention='splash': runs on TPU only"):
        Trainer(tiny_config("clip", **{"model.attention": "splash"}), str(tmp_path))


def test_mvl_compiles_flop_count_sees_inside_the_splash_kernel():
    """mvl.compile counts a Pallas kernel's body once per tile and a shard_map's once per
    device: splash's forward is the XLA path's two products (128 tokens: no padding,
    every tile computed)."""
    from mvl.compile import flops

    q = jax.ShapeDtypeStruct((4, 128, HEADS, 64), jnp.float32)

    def forward(implementation):
        def run(q):
            return attention.dot_product_attention(q, q, q, None, False, implementation).sum()

        return flops.count(jax.make_jaxpr(run)(q).jaxpr)[0]

    one_product = 2 * 4 * HEADS * 128 * 128 * 64
    assert forward("xla") == forward("splash") == 2 * one_product
    # under a mesh the kernel's shapes are one device's: counted once per device
    mesh = sharding.make_mesh(ml_collections.ConfigDict({"data": -1, "fsdp": 1, "tensor": 2}))
    with jax.set_mesh(mesh), nn.logical_axis_rules(DEFAULT_RULES):
        assert forward("splash") == 2 * one_product
