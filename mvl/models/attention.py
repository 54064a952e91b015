"""The attention kernel every block calls (`model.attention`): one function, three
implementations with the same semantics.

  xla     jax.nn.dot_product_attention's XLA path: scores [B, H, Lq, Lk] in memory.
  cudnn   the same call with implementation="cudnn": cuDNN's fused flash attention on
          NVIDIA GPUs; needs bfloat16 (or float16) and a head dim <= 128, a multiple of 8.
  splash  the Pallas TPU splash-attention kernel (jax.experimental.pallas.ops.tpu):
          blockwise, never materialises the scores.

Semantics (all three): `valid` [B, Lk] marks real keys; a query attends to every valid
key (and, `causal`, only to keys at or before its own position). Queries at pad
positions are computed like any other (their outputs are ignored downstream). A row
with no valid key at all has no defined output: `xla` averages every key's value,
`splash` every key of its padded length; no mvl model builds one (a caption keeps its
start token, MLIM's stream its patches).

How each kernel gets the padding mask:
  cudnn   the boolean mask becomes an additive bias [B, 1, Lq, Lk] (cuDNN's flash kernel
          takes a bias; its sequence-length form would assume pads only at the end, which
          MLIM's [text; patches] stream breaks). cuDNN's training kernel wants even
          lengths (jax 0.10.2 applies its bias rule to every call), so odd lengths are
          padded by one and cut off: pad keys are masked by the bias, or, without a
          mask, by cuDNN's sequence lengths (no bias then).
  splash  segment ids: every query is in segment 1, a key is in segment 1 when valid and
          0 when not. Lengths are padded to a multiple of the kernel's block (pad keys in
          segment 0, pad queries cut off). Under a mesh the kernel runs per device in
          `jax.shard_map` (batch and heads split as the activations are), because XLA
          cannot partition a Pallas call itself.
"""

from __future__ import annotations

import contextlib
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("xla", "cudnn", "splash")
# The platform (jax's device.platform, "cuda"/"rocm" read as "gpu") each kernel runs on.
PLATFORMS = {"xla": None, "cudnn": "gpu", "splash": "tpu"}
CUDNN_DTYPES = ("bfloat16",)  # of model.dtype's choices; float32 has no cuDNN flash path
CUDNN_MAX_HEAD_DIM = 128  # 256 on Hopper, but jax checks 128 when no GPU is attached (AOT)
SPLASH_BLOCK = 128  # splash tiles: sequence lengths are padded to a multiple of this

_interpret = False  # Pallas kernels run in interpret mode (CPU tests): see interpret_kernels


@contextlib.contextmanager
def interpret_kernels():
    """Within this block, `splash` traces its Pallas kernel in interpret mode, so it runs
    (slowly) on CPU: how the tests check it against `xla` without a TPU."""
    global _interpret
    saved, _interpret = _interpret, True
    try:
        yield
    finally:
        _interpret = saved


def dot_product_attention(q, k, v, valid=None, causal=False, implementation="xla"):
    """q [B, Lq, H, D], k and v [B, Lk, H, D]; `valid` [B, Lk] bool or None. -> [B, Lq, H, D]."""
    if implementation == "xla":
        mask = None if valid is None else valid[:, None, None, :]
        return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal)
    if implementation == "cudnn":
        return _cudnn(q, k, v, valid, causal)
    if implementation == "splash":
        return _splash_sharded(q, k, v, valid, causal)
    raise ValueError(f"model.attention={implementation!r}: use one of {', '.join(IMPLEMENTATIONS)}")


# cuDNN ----------------------------------------------------------------------------


def _cudnn(q, k, v, valid, causal):
    """jax 0.10.2 checks cuDNN's training kernel as if a bias were always given, and the
    bias kernel wants even lengths: odd ones are padded by one and the pad cut off."""
    batch, length_q, length_k = q.shape[0], q.shape[1], k.shape[1]
    if valid is None:
        keys = None if length_k % 2 == 0 else jnp.full((batch,), length_k, jnp.int32)
        queries = None if length_q % 2 == 0 else jnp.full((batch,), length_q, jnp.int32)
        q, k, v, _ = _pad_lengths(q, k, v, None, multiple=2)
        out = jax.nn.dot_product_attention(
            q,
            k,
            v,
            is_causal=causal,
            query_seq_lengths=queries,
            key_value_seq_lengths=keys,
            implementation="cudnn",
        )
        return out[:, :length_q]
    q, k, v, valid = _pad_lengths(q, k, v, valid, multiple=2)
    bias_shape = (batch, 1, q.shape[1], k.shape[1])
    mask = jnp.broadcast_to(valid[:, None, None, :], bias_shape)
    out = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal, implementation="cudnn")
    return out[:, :length_q]


# Splash (TPU) ---------------------------------------------------------------------


def _splash_sharded(q, k, v, valid, causal):
    """Splash per device: batch and heads split over the mesh as the activations are."""
    mesh = jax.sharding.get_abstract_mesh()
    if valid is None:
        valid = jnp.ones(k.shape[:2], bool)
    run = functools.partial(_splash, causal=causal)
    if mesh.empty:
        return run(q, k, v, valid)
    batch, heads = nn.logical_to_mesh_axes(("batch", "act_heads"))
    tokens = jax.sharding.PartitionSpec(batch, None, heads, None)
    return jax.shard_map(
        run,
        in_specs=(tokens, tokens, tokens, jax.sharding.PartitionSpec(batch, None)),
        out_specs=tokens,
        check_vma=False,
    )(q, k, v, valid)


def _splash(q, k, v, valid, causal):
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as kernel_lib,
    )

    length_q = q.shape[1]
    q, k, v, valid = _pad_lengths(q, k, v, valid, multiple=SPLASH_BLOCK)
    heads, head_dim = q.shape[2], q.shape[3]
    kernel = _splash_kernel(heads, q.shape[1], k.shape[1], causal, _interpret)
    # splash takes [H, L, D] per example and does not scale the scores itself
    q = (q * jnp.asarray(head_dim**-0.5, q.dtype)).transpose(0, 2, 1, 3)
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    segments = kernel_lib.SegmentIds(
        q=jnp.ones((q.shape[0], q.shape[2]), jnp.int32),  # [B, Lq]: every query in segment 1
        kv=valid.astype(jnp.int32),  # [B, Lk]: valid keys 1, pads 0
    )
    out = jax.vmap(kernel)(q, k, v, segment_ids=segments)
    return out.transpose(0, 2, 1, 3)[:, :length_q]


def _splash_kernel(heads, length_q, length_k, causal, interpret):
    """Built afresh in every trace: the kernel holds its mask's block tables as arrays,
    which a cache would carry from one trace into another."""
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as kernel_lib,
    )
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_mask as mask_lib,
    )

    shape = (length_q, length_k)
    one = mask_lib.CausalMask(shape) if causal else mask_lib.FullMask(shape)
    block = SPLASH_BLOCK
    sizes = kernel_lib.BlockSizes(
        block_q=block,
        block_kv=block,
        block_kv_compute=block,
        block_q_dkv=block,
        block_kv_dkv=block,
        block_kv_dkv_compute=block,
        block_q_dq=block,
        block_kv_dq=block,
    )
    return kernel_lib.make_splash_mha(
        mask_lib.MultiHeadMask([one] * heads),
        block_sizes=sizes,
        head_shards=1,
        q_seq_shards=1,
        interpret=interpret,
    )


def _pad_lengths(q, k, v, valid, multiple: int):
    """Pads Lq and Lk up to a multiple of `multiple`; pad keys are invalid."""

    def pad(x, axis):
        extra = -x.shape[axis] % multiple
        if not extra:
            return x
        widths = [(0, 0)] * x.ndim
        widths[axis] = (0, extra)
        return jnp.pad(x, widths)

    return pad(q, 1), pad(k, 1), pad(v, 1), None if valid is None else pad(valid, 1)


# Config rules ---------------------------------------------------------------------


def platform_name(platform: str) -> str:
    """jax's device.platform as the kernels name it ("cuda" and "rocm" are "gpu")."""
    return "gpu" if platform in ("cuda", "rocm", "gpu") else platform


def head_dims(model_cfg) -> dict[str, int]:
    """{config section: head dim} of every attention stack the model section declares."""
    m = model_cfg
    dims = {"model.image": m.image.width // m.image.num_heads}
    dims["model.text"] = m.text.width // m.text.num_heads
    for part in ("pixel_decoder", "feature_decoder", "single_stream"):
        if part in m:
            dims[f"model.{part}"] = m[part].width // m[part].num_heads
    if "fusion" in m:  # image queries at the image width, text queries at the text's
        dims["model.fusion (image queries)"] = m.image.width // m.fusion.num_heads
        dims["model.fusion (text queries)"] = m.text.width // m.fusion.num_heads
    if "text_decoder" in m:
        dims["model.text_decoder"] = m.text.width // m.text_decoder.num_heads
    return dims


def check(model_cfg, platform: str | None = None) -> str | None:
    """The first rule `model.attention` breaks, as one line, or None. `platform`: the
    devices the step will run on (None: not known, e.g. before an AOT target is chosen)."""
    impl = model_cfg.get("attention", "xla")
    if impl not in IMPLEMENTATIONS:
        return f"must be one of {', '.join(IMPLEMENTATIONS)}"
    needs = PLATFORMS[impl]
    if needs and platform is not None and platform_name(platform) != needs:
        return f"runs on {needs.upper()} only; these devices are {platform} (use xla)"
    if impl == "cudnn":
        if model_cfg.dtype not in CUDNN_DTYPES:
            return f"needs model.dtype=bfloat16 (cuDNN flash attention), not {model_cfg.dtype}"
        for section, dim in head_dims(model_cfg).items():
            if dim % 8 or dim > CUDNN_MAX_HEAD_DIM:
                return (
                    f"{section} has head dim {dim}; cuDNN flash attention needs a multiple "
                    f"of 8 up to {CUDNN_MAX_HEAD_DIM}"
                )
    return None
