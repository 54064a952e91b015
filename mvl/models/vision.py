"""ViT image tower: patch embedding, [CLS], positions (learned or fixed 2-D sin-cos),
mask-token replacement."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers, positions, transformer


class VisionTower(nn.Module):
    """Encodes images [B, H, W, 3] in [0, 1] into tokens [B, 1 + N, D] ([CLS] first).

    Two ways to hide patches (the survey's "replace" vs "drop"):
    `patch_mask` [B, N] (True = hidden) replaces those patch embeddings with a learned
    mask token before positions are added (SimMIM, MaskVLM): the encoder sees every
    position but not the hidden content. `keep_idx` [B, K] keeps only those patches
    after positions are added (MAE, FLIP): the encoder runs on K + 1 tokens.
    """

    image_size: int
    patch_size: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    stem: str = "patch"  # "patch": one linear patch embedding (ViT); "conv": see ConvStem
    mask_token: bool = False
    act: str = "gelu"
    ln_eps: float = 1e-6
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pixel_std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"  # see transformer.REMAT_POLICIES
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)
    scan: bool = False  # layers as one nn.scan (see transformer.Transformer)
    pre_norm: bool = False  # a LayerNorm on the embedded tokens (CLIP's ln_pre)
    drop_path: float = 0.0  # stochastic depth, training only (see transformer.Transformer)
    layer_scale: float = 0.0  # per-channel residual scale init; 0 = off (layers.Block)
    positions: str = "learned"  # or "sincos2d": fixed, no parameter (models/positions.py)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @nn.compact
    def __call__(self, images, patch_mask=None, keep_idx=None):
        x = (images - jnp.asarray(self.pixel_mean)) / jnp.asarray(self.pixel_std)
        if self.stem == "patch":
            x = nn.Conv(
                self.width,
                (self.patch_size,) * 2,
                strides=(self.patch_size,) * 2,
                padding="VALID",
                dtype=self.dtype,
                name="patch_embed",
                kernel_init=layers.dense_init((None, None, None, "embed")),
                bias_init=layers.zeros_init(("embed",)),
            )(x)
        else:  # "conv": mvl/objectives/rules.py checks the stem and its patch size
            x = ConvStem(self.patch_size, self.width, self.act, self.dtype, name="conv_stem")(x)
        batch = x.shape[0]
        x = x.reshape(batch, -1, self.width)
        if self.mask_token:
            token = self.param(
                "mask_token",
                layers.partitioned(nn.initializers.normal(0.02), (None, None, "embed")),
                (1, 1, self.width),
            )
            if patch_mask is not None:
                x = jnp.where(patch_mask[..., None], token.astype(x.dtype), x)
        elif patch_mask is not None:
            raise ValueError("VisionTower got a patch_mask but was built with mask_token=False")
        # Patches only: [CLS] gets no position (the fixed table's zeros), and dropped
        # patches are removed after, so each kept patch keeps its own grid position. An
        # image of another size (a small local crop) reads the table resized to its grid.
        x = positions.add_positions(self, x, self.positions, grid=self.grid)
        if keep_idx is not None:
            x = jnp.take_along_axis(x, keep_idx[..., None], axis=1)
        cls = self.param(
            "cls_token",
            layers.partitioned(nn.initializers.zeros_init(), (None, None, "embed")),
            (1, 1, self.width),
        )
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.width)).astype(x.dtype), x], 1)
        if self.pre_norm:
            x = layers.LayerNorm(self.ln_eps, self.dtype, name="ln_pre")(x)
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
            layer_scale=self.layer_scale,
            drop_path=self.drop_path,
        )(x)


class ConvStem(nn.Module):
    """A shallow CNN that turns each patch into a token: log2(patch) stride-2 convs.

    Channels grow to `width` at the last layer. With 3x3 kernels (the ViT tower's
    `stem='conv'`) convolutions see across patch borders and bring the locality prior a
    linear patch embedding lacks. With 2x2 kernels (MLIM's single stream) every token
    sees its own patch only, so a patch hidden by [MASK] replacement cannot leak into
    its neighbours' tokens.
    """

    patch_size: int
    width: int
    act: str = "gelu"
    dtype: jnp.dtype = jnp.float32
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x):
        num_layers = self.patch_size.bit_length() - 1  # a power of two (objectives' rules)
        for i in range(num_layers):
            last = i == num_layers - 1
            out_name = "embed" if last else None
            x = nn.Conv(
                self.width // 2 ** (num_layers - 1 - i),
                (self.kernel_size, self.kernel_size),
                strides=(2, 2),
                padding="SAME",
                dtype=self.dtype,
                name=f"conv{i}",
                kernel_init=layers.dense_init((None, None, None, out_name)),
                bias_init=layers.zeros_init((out_name,)),
            )(x)
            if not last:
                x = layers.activation(self.act)(x)
        return x
