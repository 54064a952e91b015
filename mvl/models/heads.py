"""Heads: small parts that score a target (MLM head, projections, codebook) or align
modalities. Multi-layer decoders live in mvl/models/decoders.py."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mvl.models import layers


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


class Codebook(nn.Module):
    """MaskCLIP's online quantizer: `size` learned codewords of width `dim`; features are
    scored against them by cosine similarity (mvl/objectives/distill.py)."""

    size: int
    dim: int

    @nn.compact
    def __call__(self):
        return self.param(
            "codewords",
            layers.partitioned(nn.initializers.normal(1.0), (None, "embed")),
            (self.size, self.dim),
        )


def l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    x = x.astype(jnp.float32)
    return x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + eps)
