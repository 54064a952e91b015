"""Cross-modal encoders: one modality's tokens (queries) attend to the other's.

MaskVLM has two: the image cross-modality encoder (image queries, text keys/values)
and the text cross-modality encoder (text queries, image keys/values).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import transformer


class CrossModalEncoder(nn.Module):
    depth: int
    num_heads: int
    mlp_dim: int
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"  # see transformer.REMAT_POLICIES
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)
    scan: bool = False  # layers as one nn.scan (see transformer.Transformer)

    @nn.compact
    def __call__(self, queries, queries_valid, context, context_valid, first_token_only=False):
        return transformer.Transformer(
            self.depth,
            self.num_heads,
            self.mlp_dim,
            cross_attention=True,
            act=self.act,
            ln_eps=self.ln_eps,
            dtype=self.dtype,
            name="blocks",
            remat=self.remat,
            attention=self.attention,
            scan=self.scan,
        )(queries, queries_valid, context, context_valid, first_token_only)
