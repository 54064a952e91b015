"""Heads: what predicts a target (pixel decoder, MLM head) or aligns modalities."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mvl.models import layers


class PixelDecoder(nn.Module):
    """Predicts every patch's pixels [B, N, P*P*3] from patch tokens [B, N, D].

    With `cross_attention`, each block also attends to the other modality's tokens
    (MaskVLM reconstructs the masked image from the unmasked text this way).
    """

    patch_size: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    cross_attention: bool = True
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, patch_tokens, context=None, context_valid=None):
        x = nn.Dense(
            self.width,
            dtype=self.dtype,
            name="embed",
            kernel_init=layers.dense_init(("embed", "mlp")),
            bias_init=layers.zeros_init(("mlp",)),
        )(patch_tokens)
        x = x + layers.learned_positions(self, "pos_embedding", x.shape[1], self.width)
        x = layers.Transformer(
            self.depth,
            self.num_heads,
            self.mlp_dim,
            self.cross_attention,
            self.act,
            self.ln_eps,
            self.dtype,
            name="blocks",
        )(x, None, context, context_valid)
        return nn.Dense(
            self.patch_size * self.patch_size * 3,
            dtype=jnp.float32,
            name="to_pixels",
            kernel_init=layers.dense_init(("embed", None)),
            bias_init=layers.zeros_init((None,)),
        )(x)


class MlmHead(nn.Module):
    """BERT's masked-LM head: dense + activation + LayerNorm, then a vocabulary projection."""

    vocab_size: int
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens):
        width = tokens.shape[-1]
        x = nn.Dense(
            width,
            dtype=self.dtype,
            name="transform",
            kernel_init=layers.dense_init(("embed", "mlp")),
            bias_init=layers.zeros_init(("mlp",)),
        )(tokens)
        x = layers.LayerNorm(self.ln_eps, self.dtype, name="ln")(layers.activation(self.act)(x))
        return nn.Dense(
            self.vocab_size,
            dtype=jnp.float32,
            name="to_vocab",
            kernel_init=layers.dense_init(("mlp", "vocab")),
            bias_init=layers.zeros_init(("vocab",)),
        )(x)


class Projection(nn.Module):
    """Linear map into the shared embedding space (no bias, as in CLIP)."""

    dim: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(
            self.dim,
            use_bias=False,
            dtype=jnp.float32,
            name="proj",
            kernel_init=layers.dense_init(("embed", None)),
        )(x)


class LogitScale(nn.Module):
    """The learnable log inverse temperature of contrastive logits (init ln(1/0.07))."""

    init_temperature: float = 0.07

    @nn.compact
    def __call__(self):
        init = np.log(1.0 / self.init_temperature)
        return self.param("logit_scale", layers.partitioned(nn.initializers.constant(init), ()), ())


class ItmHead(nn.Module):
    """Two-way match / no-match classifier on fused [CLS] features."""

    @nn.compact
    def __call__(self, features):
        return nn.Dense(
            2,
            dtype=jnp.float32,
            name="classifier",
            kernel_init=layers.dense_init(("embed", None)),
            bias_init=layers.zeros_init((None,)),
        )(features)


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    x = x.astype(jnp.float32)
    return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)
