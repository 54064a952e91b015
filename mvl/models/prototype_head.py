"""DINO's projection head, which SILC's and TIPS' self-distillation losses score in: an
MLP to a bottleneck, L2-normalised, then a linear map (no bias) onto `prototypes`
logits. The student's and the teacher's features go through the same head (the
teacher's output with no gradient: mvl/objectives/self_distill.py).

Its activations are pinned to the batch sharding: without the constraint, on an FSDP
mesh XLA gathered the per-patch head's [batch, patches, 8192] logits of the whole
global batch onto every device (SigLIP 2's masked prediction: 256 GiB per GPU)
instead of gathering the head's weights."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mvl.models import layers
from mvl.models.heads import l2_normalize


class PrototypeHead(nn.Module):
    hidden: int
    bottleneck: int
    prototypes: int
    act: str = "gelu"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, features):
        x = by_batch(features)
        for i, width in enumerate((self.hidden, self.hidden, self.bottleneck)):
            x = nn.Dense(
                width,
                dtype=self.dtype,
                name=f"mlp{i}",
                kernel_init=layers.dense_init(("embed", "mlp")),
                bias_init=layers.zeros_init(("mlp",)),
            )(x)
            if i < 2:
                x = layers.activation(self.act)(x)
            x = by_batch(x)
        logits = nn.Dense(
            self.prototypes,
            use_bias=False,
            dtype=jnp.float32,
            name="prototypes",
            kernel_init=layers.dense_init(("mlp", None)),
        )(l2_normalize(x.astype(jnp.float32)))
        return by_batch(logits)


def by_batch(x):
    """x [batch, ...] sharded by its batch axis only (the mesh's batch axes)."""
    return nn.with_logical_constraint(x, ("batch",) + (None,) * (x.ndim - 1))
