"""LocCa's captioning decoder: a transformer decoder that reads the image encoder's
un-pooled tokens through cross-attention and predicts the caption token by token.

Two ways to decode, chosen per call (the same parameters serve both):
  causal=True   teacher forcing: the inputs are the caption shifted right and each
                position sees only itself and earlier positions (autoregressive);
  causal=False  parallel prediction (CapPa, which LocCa and SigLIP 2 follow): every input
                is one learned mask token and the positions see each other, so every
                token is predicted from the image alone.
The blocks are pre-LN (self-attention, cross-attention to the image, MLP), built from
mvl/models/layers.py's Attention / Mlp / LayerNorm; they are their own loop, not
transformer.Transformer, because causality is a call argument here (one decoder, two
kinds of rows), not a module attribute.

Given `targets`, the decoder returns each position's cross-entropy and hit instead of
its logits, projecting onto the vocabulary `chunk` positions at a time
(mvl/models/vocab_scores.py): at a 256k vocabulary the full logits do not fit a chip.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers, vocab_scores


class CaptionBlock(nn.Module):
    num_heads: int
    mlp_dim: int
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    attention: str = "xla"  # the kernel (model.attention: mvl/models/attention.py)

    @nn.compact
    def __call__(self, x, valid, image_tokens, causal: bool):
        def norm(name, y):
            return layers.LayerNorm(self.ln_eps, self.dtype, name=name)(y)

        x = x + layers.Attention(self.num_heads, self.dtype, self.attention, name="self_attn")(
            norm("ln_self", x), context_valid=valid, causal=causal
        )
        x = x + layers.Attention(self.num_heads, self.dtype, self.attention, name="cross_attn")(
            norm("ln_cross", x), image_tokens
        )
        return x + layers.Mlp(self.mlp_dim, self.act, self.dtype, name="mlp")(norm("ln_mlp", x))


class CaptionDecoder(nn.Module):
    """(input ids [B, L], image tokens [B, N, D]) -> next-token logits [B, L, vocab], or,
    given targets [B, L], (-log p(target), argmax hit) per position, each [B, L]."""

    vocab_size: int
    max_len: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    attention: str = "xla"  # the kernel (model.attention: mvl/models/attention.py)

    @nn.compact
    def __call__(self, input_ids, image_tokens, causal: bool = True, targets=None, chunk=0):
        if input_ids.shape[1] > self.max_len:
            raise ValueError(
                f"caption length {input_ids.shape[1]} exceeds model.caption_decoder.max_len "
                f"{self.max_len}"
            )
        embed = nn.Embed(
            self.vocab_size,
            self.width,
            dtype=self.dtype,
            name="token_embedding",
            embedding_init=layers.partitioned(nn.initializers.normal(0.02), ("vocab", "embed")),
        )
        # Both inputs' parameters exist whichever kind of rows a call decodes (Module.init
        # may see only one kind).
        x = embed(input_ids)
        token = self.param(
            "mask_token",
            layers.partitioned(nn.initializers.normal(0.02), (None, None, "embed")),
            (1, 1, self.width),
        )
        if not causal:  # parallel prediction: a learned mask token at every position
            x = jnp.broadcast_to(token, input_ids.shape + (self.width,)).astype(self.dtype)
        positions = layers.learned_positions(self, "pos_embedding", self.max_len, self.width)
        x = x + positions[:, : input_ids.shape[1]].astype(x.dtype)
        for i in range(self.depth):
            x = CaptionBlock(
                self.num_heads,
                self.mlp_dim,
                self.act,
                self.ln_eps,
                self.dtype,
                self.attention,
                name=f"block{i}",
            )(x, None, image_tokens, causal)
        x = layers.LayerNorm(self.ln_eps, self.dtype, name="ln_final")(x)
        to_vocab = nn.Dense(
            self.vocab_size,
            dtype=jnp.float32,
            name="to_vocab",
            kernel_init=layers.dense_init(("embed", "vocab")),
            bias_init=layers.zeros_init(("vocab",)),
        )
        if targets is None:
            return to_vocab(x)
        if self.is_initializing():  # makes the parameters; 1 x 1 x V is cheap
            to_vocab(x[:1, :1])
        params = nn.unbox(self.variables["params"]["to_vocab"])
        return vocab_scores.token_scores(x, params["kernel"], params["bias"], targets, chunk)
