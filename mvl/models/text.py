"""Text transformer: bidirectional with [CLS] pooling (token 0), or causal with the
last token pooling (CLIP: the end-of-text token sees the whole caption)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers, transformer


class TextTower(nn.Module):
    """Encodes token ids [B, L] into tokens [B, L, D]; `valid` [B, L] marks non-pad ids."""

    vocab_size: int
    max_len: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"  # see transformer.REMAT_POLICIES
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)
    scan: bool = False  # layers as one nn.scan (see transformer.Transformer)
    causal: bool = False
    pool: str = "first"  # read by MultimodalModel.embed_text: see pooled()

    @nn.compact
    def __call__(self, ids, valid):
        if ids.shape[1] > self.max_len:
            raise ValueError(
                f"text length {ids.shape[1]} exceeds the model's max_len {self.max_len}"
            )
        x = nn.Embed(
            self.vocab_size,
            self.width,
            dtype=self.dtype,
            name="token_embedding",
            embedding_init=layers.partitioned(nn.initializers.normal(0.02), ("vocab", "embed")),
        )(ids)
        positions = layers.learned_positions(self, "pos_embedding", self.max_len, self.width)
        x = x + positions[:, : ids.shape[1]]
        return transformer.Transformer(
            self.depth,
            self.num_heads,
            self.mlp_dim,
            act=self.act,
            ln_eps=self.ln_eps,
            dtype=self.dtype,
            name="encoder",
            remat=self.remat,
            attention=self.attention,
            scan=self.scan,
            causal=self.causal,
            # causal: pads follow the last token, which never sees them; real tokens that
            # share the pad id (CLIP's "!" is id 0) must stay visible, so no pad mask
        )(x, None if self.causal else valid)


def pooled(tokens, valid, pool: str):
    """The token that stands for the caption: the first ([CLS]), or the last valid one
    ("last": CLIP's end-of-text). `valid` [B, L] is the tokenizer's (SpecialIds.valid),
    so a caption's own "!" (CLIP's id 0, also its pad id) is not taken for padding."""
    if pool == "first":
        return tokens[:, 0]
    if pool == "last":
        length = valid.shape[1]
        last = length - 1 - jnp.argmax(valid[:, ::-1], axis=1)
        return jnp.take_along_axis(tokens, last[:, None, None], axis=1)[:, 0]
    raise ValueError(f"config model.text.pool={pool!r} is not one of first, last")
