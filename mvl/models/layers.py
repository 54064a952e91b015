"""Transformer building blocks shared by every tower, fusion layer and decoder.

Every parameter carries logical axis names (`embed`, `mlp`, `heads`, `kv`, `vocab`,
...) through `nn.with_logical_partitioning`; activations are constrained with
`nn.with_logical_constraint`. mvl/runtime/sharding.py maps the names onto the mesh.
"""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvl.models import attention as attention_kernels

Dtype = jnp.dtype

# Activation names: the residual stream is replicated over `tensor` (Megatron-style),
# heads and MLP hidden units are split over it.
ACT_TOKENS = ("batch", "length", "act_embed")


def partitioned(init: Callable, names: tuple[str | None, ...]) -> Callable:
    return nn.with_logical_partitioning(init, names)


def dense_init(names):
    return partitioned(nn.initializers.xavier_uniform(), names)


def zeros_init(names):
    return partitioned(nn.initializers.zeros_init(), names)


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """`gelu` (exact erf), `gelu_tanh`, or `quick_gelu` (OpenAI CLIP's x*sigmoid(1.702x))."""
    if name == "gelu":
        return lambda x: nn.gelu(x, approximate=False)
    if name == "gelu_tanh":
        return lambda x: nn.gelu(x, approximate=True)
    if name == "quick_gelu":
        return lambda x: x * jax.nn.sigmoid(1.702 * x)
    raise ValueError(f"unknown activation {name!r}; use gelu, gelu_tanh or quick_gelu")


class LayerNorm(nn.Module):
    """LayerNorm whose scale and bias are named `embed`."""

    epsilon: float = 1e-6
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn.LayerNorm(
            epsilon=self.epsilon,
            dtype=self.dtype,
            scale_init=partitioned(nn.initializers.ones_init(), ("embed",)),
            bias_init=zeros_init(("embed",)),
        )(x)


class Attention(nn.Module):
    """Multi-head attention; self-attention when `context` is None, else cross-attention.

    `context_valid` [B, Lk] marks real (non-pad) keys. `attention` names the kernel
    (`model.attention`: mvl/models/attention.py); all give the same numbers.
    """

    num_heads: int
    dtype: Dtype = jnp.float32
    attention: str = "xla"

    @nn.compact
    def __call__(self, x, context=None, context_valid=None, causal: bool = False):
        """`causal`: each query sees only keys at or before its position (CLIP's text)."""
        context = x if context is None else context
        width = x.shape[-1]
        if width % self.num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {self.num_heads}")
        head_dim = width // self.num_heads

        def project(name, inputs):
            # One Dense over all heads ("heads" names heads * head_dim, heads contiguous),
            # so splitting it over `tensor` splits whole heads.
            y = nn.Dense(
                width,
                dtype=self.dtype,
                name=name,
                kernel_init=dense_init(("embed", "heads")),
                bias_init=zeros_init(("heads",)),
            )(inputs)
            y = y.reshape(y.shape[:-1] + (self.num_heads, head_dim))
            return nn.with_logical_constraint(y, ("batch", "length", "act_heads", "kv"))

        q, k, v = project("query", x), project("key", context), project("value", context)
        y = attention_kernels.dot_product_attention(q, k, v, context_valid, causal, self.attention)
        y = nn.Dense(
            width,
            dtype=self.dtype,
            name="out",
            kernel_init=dense_init(("heads", "embed")),
            bias_init=zeros_init(("embed",)),
        )(y.reshape(y.shape[:-2] + (width,)))
        return nn.with_logical_constraint(y, ACT_TOKENS)


class Mlp(nn.Module):
    hidden: int
    act: str = "gelu"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        width = x.shape[-1]
        h = nn.Dense(
            self.hidden,
            dtype=self.dtype,
            name="fc1",
            kernel_init=dense_init(("embed", "mlp")),
            bias_init=zeros_init(("mlp",)),
        )(x)
        h = nn.with_logical_constraint(activation(self.act)(h), ("batch", "length", "act_mlp"))
        return nn.Dense(
            width,
            dtype=self.dtype,
            name="fc2",
            kernel_init=dense_init(("mlp", "embed")),
            bias_init=zeros_init(("embed",)),
        )(h)


class Block(nn.Module):
    """Pre-LN transformer block: self-attention, optional cross-attention, MLP.

    layer_scale > 0: each residual branch is multiplied by a learned per-channel vector
    initialised at that value (CaiT; BEiT uses 0.1 for ViT-B). stochastic_depth: each
    residual branch is dropped per example with probability `drop_rate` (a call
    argument, so a scanned stack can give each layer its own), only while a "dropout"
    rng is passed to `apply` (training); evaluation passes none and keeps every branch.
    """

    num_heads: int
    mlp_dim: int
    cross_attention: bool = False
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: Dtype = jnp.float32
    causal: bool = False
    layer_scale: float = 0.0
    stochastic_depth: bool = False
    # Compute only the first token's output (its queries still attend to every token):
    # the same numbers as the full block's [:, :1], for heads that read only [CLS].
    first_token_only: bool = False
    attention: str = "xla"  # the kernel: mvl/models/attention.py

    @nn.compact
    def __call__(self, x, valid=None, context=None, context_valid=None, drop_rate=0.0):
        x = nn.with_logical_constraint(x, ACT_TOKENS)
        normed = LayerNorm(self.ln_eps, self.dtype, name="ln_self")(x)
        if self.first_token_only:
            if self.causal:
                raise ValueError("first_token_only needs bidirectional self-attention")
            x, queries, keys = x[:, :1], normed[:, :1], normed
        else:
            queries, keys = normed, None  # None: self-attention over `queries`
        branch = Attention(self.num_heads, self.dtype, self.attention, name="self_attn")(
            queries, keys, context_valid=valid, causal=self.causal
        )
        x = x + self._residual("self_attn", branch, drop_rate)
        if self.cross_attention:
            branch = Attention(self.num_heads, self.dtype, self.attention, name="cross_attn")(
                LayerNorm(self.ln_eps, self.dtype, name="ln_cross")(x), context, context_valid
            )
            x = x + self._residual("cross_attn", branch, drop_rate)
        branch = Mlp(self.mlp_dim, self.act, self.dtype, name="mlp")(
            LayerNorm(self.ln_eps, self.dtype, name="ln_mlp")(x)
        )
        x = x + self._residual("mlp", branch, drop_rate)
        return nn.with_logical_constraint(x, ACT_TOKENS)

    def _residual(self, name: str, branch, drop_rate):
        if self.layer_scale > 0:
            gamma = self.param(
                f"layer_scale_{name}",
                partitioned(nn.initializers.constant(self.layer_scale), ("embed",)),
                (branch.shape[-1],),
            )
            branch = branch * gamma.astype(branch.dtype)
        if self.stochastic_depth and self.has_rng("dropout"):
            keep = 1.0 - jnp.asarray(drop_rate, jnp.float32)
            shape = (branch.shape[0],) + (1,) * (branch.ndim - 1)
            kept = jax.random.bernoulli(self.make_rng("dropout"), keep, shape)
            branch = branch * (kept / jnp.maximum(keep, 1e-6)).astype(branch.dtype)
        return branch


def learned_positions(module: nn.Module, name: str, length: int, width: int):
    """A [1, length, width] learned position table, initialised small."""
    return module.param(
        name,
        partitioned(nn.initializers.normal(0.02), (None, "length", "embed")),
        (1, length, width),
    )
