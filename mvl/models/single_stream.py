"""MLIM's single-stream encoder: one transformer over [text tokens; image patches]."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers, transformer
from mvl.models.vision import ConvStem


class SingleStreamEncoder(nn.Module):
    """Encodes (ids [B, L], images [B, H, W, 3]) into (text [B, L, D], patches [B, N, D]).

    Words are embedded by a token table, patches by a shallow CNN of non-overlapping 2x2
    stride-2 convolutions (ConvStem; MLIM reports 2x2 kernels [?]); each
    modality has its own learned positions and there is no segment embedding [?].
    Masking is embedding replacement in both modalities: a text position holding [MASK]
    gets the [MASK] row of the token table, and a hidden patch (`patch_mask` [B, N])
    gets that same learned [MASK] embedding. Modality dropout removes a modality of an
    example from attention: `text_keep` / `image_keep` [B] (False = dropped).
    """

    vocab_size: int
    max_len: int
    image_size: int
    patch_size: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    mask_id: int  # the tokenizer's [MASK] (SpecialIds.mask); no default: tokenizers differ
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pixel_std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"  # see transformer.REMAT_POLICIES
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)
    scan: bool = False  # layers as one nn.scan (see transformer.Transformer)

    @nn.compact
    def __call__(self, ids, valid, images, patch_mask=None, text_keep=None, image_keep=None):
        embed = nn.Embed(
            self.vocab_size,
            self.width,
            dtype=self.dtype,
            name="token_embedding",
            embedding_init=layers.partitioned(nn.initializers.normal(0.02), ("vocab", "embed")),
        )
        text = embed(ids)
        text = (
            text
            + layers.learned_positions(self, "text_positions", self.max_len, self.width)[
                :, : ids.shape[1]
            ]
        )
        pixels = (images - jnp.asarray(self.pixel_mean)) / jnp.asarray(self.pixel_std)
        patches = ConvStem(
            self.patch_size, self.width, self.act, self.dtype, kernel_size=2, name="conv_stem"
        )(pixels)
        patches = patches.reshape(patches.shape[0], -1, self.width)
        if patch_mask is not None:
            mask_embedding = embed(jnp.full((1, 1), self.mask_id))
            patches = jnp.where(patch_mask[..., None], mask_embedding, patches)
        patches = patches + layers.learned_positions(
            self, "image_positions", patches.shape[1], self.width
        )
        batch, num_patches = patches.shape[:2]
        image_valid = jnp.ones((batch, num_patches), bool)
        if text_keep is not None:
            valid = valid & text_keep[:, None]
        if image_keep is not None:
            image_valid = image_valid & image_keep[:, None]
        tokens = transformer.Transformer(
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
        )(jnp.concatenate([text, patches], 1), jnp.concatenate([valid, image_valid], 1))
        return tokens[:, : ids.shape[1]], tokens[:, ids.shape[1] :]
