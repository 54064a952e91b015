"""Where the image tower's [CLS] looks: attention maps for notebooks and reports.

The blocks use `jax.nn.dot_product_attention`, which returns outputs, not weights; rather
than change the model, the query and key projections of the image tower's self-attention
are read back with flax's `capture_intermediates` and the weights recomputed from them
(softmax(q k^T / sqrt(d)), exactly what the block computes).
"""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _is_image_projection(module: nn.Module, method_name: str) -> bool:
    path = "/".join(module.path)
    return (
        method_name == "__call__"
        and path.startswith("image/")
        and "/self_attn/" in path + "/"
        and module.name in ("query", "key")
    )


def cls_attention(model, params, images, num_heads: int, block: int = -1) -> np.ndarray:
    """[B, grid, grid]: the [CLS] token's attention over the patches in one block of the
    image tower (default the last), averaged over heads; rows sum to at most 1 (the
    rest is [CLS] attending to itself)."""
    _, state = model.apply(
        {"params": params},
        images,
        method="encode_image",
        capture_intermediates=_is_image_projection,
        mutable=["intermediates"],
    )
    found = {}
    for path, value in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]:
        names = [getattr(p, "key", getattr(p, "name", "")) for p in path]
        names = [str(n) for n in names]
        if "self_attn" not in names:
            continue
        block_name = names[names.index("self_attn") - 1]
        found.setdefault(block_name, {})[names[names.index("self_attn") + 1]] = value
    if not found:
        raise ValueError("no image self-attention captured (scan_layers=True is not supported)")
    ordered = sorted(found, key=lambda name: [int(d) for d in re.findall(r"\d+", name)] or [0])
    projections = found[ordered[block]]
    q, k = (_heads(projections[name], num_heads) for name in ("query", "key"))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    weights = jax.nn.softmax(logits, axis=-1).mean(1)  # [B, tokens, tokens]
    to_patches = np.asarray(weights[:, 0, 1:])  # [CLS] row, patch columns
    grid = int(round(np.sqrt(to_patches.shape[-1])))
    return to_patches.reshape(-1, grid, grid)


def _heads(x, num_heads: int):
    return x.reshape(x.shape[:-1] + (num_heads, x.shape[-1] // num_heads))
