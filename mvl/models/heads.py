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
    (MaskVLM reconstructs the masked image from the unmasked text this way). With
    `insert_mask_tokens` the input holds only the visible patches (`keep_idx`), and a
    learned mask token fills every other position before the blocks run (MAE).
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

    insert_mask_tokens: bool = False
    num_patches: int = 0  # the full grid, needed to re-insert dropped patches

    @nn.compact
    def __call__(self, patch_tokens, context=None, context_valid=None, keep_idx=None):
        x = nn.Dense(
            self.width,
            dtype=self.dtype,
            name="embed",
            kernel_init=layers.dense_init(("embed", "mlp")),
            bias_init=layers.zeros_init(("mlp",)),
        )(patch_tokens)
        if self.insert_mask_tokens:
            x = self._insert_mask_tokens(x, keep_idx)
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

    def _insert_mask_tokens(self, visible, keep_idx):
        """[B, K, W] visible tokens -> [B, N, W] in raster order, mask tokens elsewhere."""
        token = self.param(
            "mask_token",
            layers.partitioned(nn.initializers.normal(0.02), (None, None, "mlp")),
            (1, 1, self.width),
        )
        batch = visible.shape[0]
        full = jnp.broadcast_to(token.astype(visible.dtype), (batch, self.num_patches, self.width))
        rows = jnp.arange(batch)[:, None]
        return full.at[rows, keep_idx].set(visible)


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


class SigmoidScaleBias(nn.Module):
    """SigLIP's learnable log scale t' and bias b (logits = exp(t') z_i.z_t + b)."""

    init_scale: float = 10.0
    init_bias: float = -10.0

    @nn.compact
    def __call__(self):
        init = nn.initializers.constant
        log_scale = self.param(
            "log_scale", layers.partitioned(init(np.log(self.init_scale)), ()), ()
        )
        bias = self.param("bias", layers.partitioned(init(self.init_bias), ()), ())
        return log_scale, bias


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
