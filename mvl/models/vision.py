"""ViT image tower: patch embedding, [CLS], learned positions, mask-token replacement."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers


class VisionTower(nn.Module):
    """Encodes images [B, H, W, 3] in [0, 1] into tokens [B, 1 + N, D] ([CLS] first).

    `patch_mask` [B, N] (True = hidden) replaces those patch embeddings with a learned
    mask token before positions are added (SimMIM-style), so the encoder sees every
    position but not the hidden content.
    """
    image_size: int
    patch_size: int
    width: int
    depth: int
    num_heads: int
    mlp_dim: int
    mask_token: bool = False
    act: str = "gelu"
    ln_eps: float = 1e-6
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pixel_std: tuple[float, float, float] = (0.25, 0.25, 0.25)
    dtype: jnp.dtype = jnp.float32

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @nn.compact
    def __call__(self, images, patch_mask=None):
        x = (images - jnp.asarray(self.pixel_mean)) / jnp.asarray(self.pixel_std)
        x = nn.Conv(self.width, (self.patch_size,) * 2, strides=(self.patch_size,) * 2,
                                padding="VALID", dtype=self.dtype, name="patch_embed",
                                kernel_init=layers.dense_init((None, None, None, "embed")),
                                bias_init=layers.zeros_init(("embed",)))(x)
        batch = x.shape[0]
        x = x.reshape(batch, -1, self.width)
        if self.mask_token:
            token = self.param("mask_token", layers.partitioned(nn.initializers.normal(0.02),
                                                                                                                      (None, None, "embed")), (1, 1, self.width))
            if patch_mask is not None:
                x = jnp.where(patch_mask[..., None], token.astype(x.dtype), x)
        elif patch_mask is not None:
            raise ValueError("VisionTower got a patch_mask but was built with mask_token=False")
        x = x + layers.learned_positions(self, "pos_embedding", x.shape[1], self.width)
        cls = self.param("cls_token", layers.partitioned(nn.initializers.zeros_init(),
                                                                                                          (None, None, "embed")), (1, 1, self.width))
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.width)).astype(x.dtype), x], 1)
        return layers.Transformer(self.depth, self.num_heads, self.mlp_dim, act=self.act,
                                                            ln_eps=self.ln_eps, dtype=self.dtype, name="encoder")(x)
