"""Decoders: multi-layer heads that turn encoder tokens back into a target.

TokenDecoder predicts one vector per patch (pixels for MaskVLM / MAE, teacher features
for MaskCLIP); DeconvDecoder upsamples a patch grid to an image (MLIM's RECON);
TextDecoder is MaskCLIP's transformer between the text tower and the MLM head.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers, positions, transformer


class TokenDecoder(nn.Module):
    """Predicts an `out_dim` vector for every patch [B, N, out_dim] from patch tokens.

    With `cross_attention`, each block also attends to the other modality's tokens
    (MaskVLM reconstructs the masked image from the unmasked text this way). With
    `insert_mask_tokens` the input holds only the visible patches (`keep_idx`), and a
    learned mask token fills every other position before the blocks run (MAE).
    With `keep_cls` the input's first token is the encoder's [CLS]: it is embedded with
    the patches, attends and is attended to in every block, and is dropped only before
    the output (MAE's decoder); the output is the patches' either way.
    """

    out_dim: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    cross_attention: bool = False
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"  # see transformer.REMAT_POLICIES
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)
    scan: bool = False  # layers as one nn.scan (see transformer.Transformer)

    insert_mask_tokens: bool = False
    num_patches: int = 0  # the full grid, needed to re-insert dropped patches
    positions: str = "learned"  # or "sincos2d" (models/positions.py)
    keep_cls: bool = False  # input is [CLS] + patches; [CLS] joins the blocks (MAE)

    @nn.compact
    def __call__(self, patch_tokens, context=None, context_valid=None, keep_idx=None):
        x = nn.Dense(
            self.width,
            dtype=self.dtype,
            name="embed",
            kernel_init=layers.dense_init(("embed", "mlp")),
            bias_init=layers.zeros_init(("mlp",)),
        )(patch_tokens)
        num_cls = 1 if self.keep_cls else 0
        cls, x = x[:, :num_cls], x[:, num_cls:]
        if self.insert_mask_tokens:
            x = InsertMaskTokens(self.num_patches, name="insert_mask_tokens")(x, keep_idx)
        x = jnp.concatenate([cls, x], axis=1)
        x = positions.add_positions(self, x, self.positions, num_cls)
        x = transformer.Transformer(
            self.depth,
            self.num_heads,
            self.mlp_dim,
            self.cross_attention,
            self.act,
            self.ln_eps,
            self.dtype,
            name="blocks",
            remat=self.remat,
            attention=self.attention,
            scan=self.scan,
        )(x, None, context, context_valid)[:, num_cls:]
        return nn.Dense(
            self.out_dim,
            dtype=jnp.float32,
            name="out",
            kernel_init=layers.dense_init(("embed", None)),
            bias_init=layers.zeros_init((None,)),
        )(x)


class InsertMaskTokens(nn.Module):
    """[B, K, W] visible tokens -> [B, N, W] in raster order, a learned token elsewhere.

    `keep_idx` [B, K] says where each visible token came from (mvl/mask/ranks.py's
    visible_indices), so the decoder sees every patch where it belongs (MAE).
    """

    num_patches: int

    @nn.compact
    def __call__(self, visible, keep_idx):
        batch, _, width = visible.shape
        token = self.param(
            "mask_token",
            layers.partitioned(nn.initializers.normal(0.02), (None, None, "mlp")),
            (1, 1, width),
        )
        full = jnp.broadcast_to(token.astype(visible.dtype), (batch, self.num_patches, width))
        rows = jnp.arange(batch)[:, None]
        return full.at[rows, keep_idx].set(visible)


class DeconvDecoder(nn.Module):
    """Patch tokens [B, N, D] on a square grid -> an image [B, H, W, 3] in [0, 1].

    log2(patch_size) stride-2 transposed convolutions, channels halving from `width`,
    then a 3x3 convolution to RGB and a sigmoid (MLIM's deconvolution decoder [?]).
    """

    patch_size: int
    width: int
    act: str = "gelu"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, patch_tokens):
        batch, num_patches, _ = patch_tokens.shape
        grid = int(round(num_patches**0.5))
        num_layers = self.patch_size.bit_length() - 1  # a power of two: objectives.recon
        x = patch_tokens.reshape(batch, grid, grid, -1)
        for i in range(num_layers):
            x = nn.ConvTranspose(
                max(self.width // 2**i, 8),
                (4, 4),
                strides=(2, 2),
                padding="SAME",
                dtype=self.dtype,
                name=f"deconv{i}",
                kernel_init=layers.dense_init((None, None, None, None)),
                bias_init=layers.zeros_init((None,)),
            )(x)
            x = layers.activation(self.act)(x)
        x = nn.Conv(
            3,
            (3, 3),
            padding="SAME",
            dtype=jnp.float32,
            name="to_rgb",
            kernel_init=layers.dense_init((None, None, None, None)),
            bias_init=layers.zeros_init((None,)),
        )(x)
        return nn.sigmoid(x)


class TextDecoder(nn.Module):
    """A text-only transformer on top of the text tower (MaskCLIP's 4-layer decoder)."""

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
    def __call__(self, text_tokens, valid):
        return transformer.Transformer(
            self.depth,
            self.num_heads,
            self.mlp_dim,
            act=self.act,
            ln_eps=self.ln_eps,
            dtype=self.dtype,
            name="blocks",
            remat=self.remat,
            attention=self.attention,
            scan=self.scan,
        )(text_tokens, valid)
