"""The transformer stack every tower, fusion layer and decoder runs: `depth` blocks
(mvl/models/layers.py), unrolled or as one `nn.scan`, with optional rematerialisation."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvl.models import layers

# Rematerialisation of each block in the backward pass (`model.remat`): what a block
# keeps from its forward pass; the rest is recomputed.
REMAT_POLICIES = {
    "none": None,  # no remat: keep every activation
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only block inputs
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,  # keep matmul outputs
}


class Transformer(nn.Module):
    """A stack of `depth` blocks followed by a final LayerNorm.

    `scan=True` runs the blocks as one `nn.scan` over stacked parameters (a leading
    `layers` axis): XLA compiles one block instead of `depth`, which cuts compile time
    for deep towers; the parameter tree differs (`blocks/block` instead of `block0..`),
    so checkpoints do not cross between the two layouts.
    """

    depth: int
    num_heads: int
    mlp_dim: int
    cross_attention: bool = False
    act: str = "gelu"
    ln_eps: float = 1e-6
    dtype: jnp.dtype = jnp.float32
    remat: str = "none"
    scan: bool = False
    causal: bool = False  # self-attention sees only earlier positions (CLIP's text tower)
    layer_scale: float = 0.0  # see Block
    # Stochastic depth: block i drops its branches with probability drop_path * i /
    # (depth - 1), rising linearly to drop_path at the last block (BEiT, timm).
    drop_path: float = 0.0
    attention: str = "xla"  # the attention kernel (mvl/models/attention.py)

    @nn.compact
    def __call__(self, x, valid=None, context=None, context_valid=None, first_token_only=False):
        """`first_token_only`: return [B, 1, D], the first token's output alone (the last
        block computes no other token; same values as the full stack's [:, :1])."""
        # model.remat is one of REMAT_POLICIES: mvl/validate.py checks it before building.
        block_args = (
            self.num_heads,
            self.mlp_dim,
            self.cross_attention,
            self.act,
            self.ln_eps,
            self.dtype,
            self.causal,
            self.layer_scale,
            self.drop_path > 0,
        )
        block_kwargs = {"attention": self.attention}
        rates = jnp.linspace(0.0, self.drop_path, self.depth) if self.drop_path > 0 else None
        if self.scan:
            layer = _ScannedBlock
            if self.remat != "none":
                layer = nn.remat(layer, policy=REMAT_POLICIES[self.remat], prevent_cse=False)
            stack = nn.scan(
                layer,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast, nn.broadcast, nn.broadcast, 0),
                length=self.depth,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            if rates is None:
                rates = jnp.zeros((self.depth,), jnp.float32)
            x, _ = stack(block_args, block_kwargs, name="blocks")(
                x, valid, context, context_valid, rates
            )
            if first_token_only:  # a scanned stack has no separate last block to trim
                x = x[:, :1]
        else:
            block = layers.Block
            if self.remat != "none":
                block = nn.remat(layers.Block, policy=REMAT_POLICIES[self.remat])
            for i in range(self.depth):
                rate = 0.0 if rates is None else rates[i]
                last_and_trimmed = first_token_only and i == self.depth - 1
                x = block(
                    *block_args, first_token_only=last_and_trimmed, **block_kwargs, name=f"block{i}"
                )(x, valid, context, context_valid, rate)
        return layers.LayerNorm(self.ln_eps, self.dtype, name="ln_final")(x)


class _ScannedBlock(nn.Module):
    """One Block (built from the stack's `block_args` and `block_kwargs`) in the
    (carry, output) form nn.scan expects."""

    block_args: tuple
    block_kwargs: dict

    @nn.compact
    def __call__(self, x, valid, context, context_valid, drop_rate):
        block = layers.Block(*self.block_args, **self.block_kwargs, name="block")
        return block(x, valid, context, context_valid, drop_rate), None
