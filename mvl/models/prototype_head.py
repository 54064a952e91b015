"""DINO's projection head, which SILC's and TIPS' self-distillation losses score in: an
MLP to a bottleneck, L2-normalised, then a linear map (no bias) onto `prototypes`
logits. The student's and the teacher's features go through the same head (the
teacher's output with no gradient: mvl/objectives/self_distill.py)."""

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
        x = features
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
        return nn.Dense(
            self.prototypes,
            use_bias=False,
            dtype=jnp.float32,
            name="prototypes",
            kernel_init=layers.dense_init(("mlp", None)),
        )(l2_normalize(x.astype(jnp.float32)))
