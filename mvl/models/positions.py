"""Position embeddings of a square patch grid: learned, or fixed 2-D sine-cosine.

"sincos2d" is MAE's (and MoCo v3's) fixed table: the channels split in two halves, the
first encoding a patch's column and the second its row (MAE's reference ordering); each
half is [sin(p * w_k), cos(p * w_k)] over width / 4 frequencies w_k = 10000^(-k / (width
/ 4)). It is a constant, not a parameter, so a model built with it has no
`pos_embedding` to learn or to checkpoint. A [CLS] token's position is all zeros.

A tower whose table was made for one grid can read a smaller (or larger) image: its
table is resized to that image's grid, bilinearly, as DINO does for its small local
crops, so every patch of a crop keeps a position in the same spatial frame.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mvl.models import layers

KINDS = ("learned", "sincos2d")


def sincos_1d(coordinates: np.ndarray, channels: int) -> np.ndarray:
    """[L] coordinates -> [L, channels]: sin over the first half, cos over the second."""
    quarter = channels // 2
    frequencies = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
    angles = coordinates.astype(np.float64)[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(grid: int, width: int) -> np.ndarray:
    """The [grid * grid, width] table in raster order (row-major, as patches are)."""
    if width % 4:
        raise ValueError(f"2-D sin-cos positions need a width divisible by 4, got {width}")
    rows, columns = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    half = width // 2
    table = np.concatenate(
        [sincos_1d(columns.reshape(-1), half), sincos_1d(rows.reshape(-1), half)], axis=1
    )
    return table.astype(np.float32)


def grid_side(num_patches: int) -> int:
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
        raise ValueError(f"2-D positions need a square patch grid, got {num_patches} patches")
    return side


def add_positions(
    module: nn.Module, x, kind: str, num_cls: int = 0, name="pos_embedding", grid=None
):
    """x [B, num_cls + N, W] plus the positions of `kind`; the first `num_cls` tokens
    are [CLS]-like (a learned table covers them too; the fixed table gives them zeros).

    `grid`: the side of the patch grid the table is made for (the tower's image size
    over its patch size); when x's patches form another square grid, the table is
    resized to it (see the module docstring). None: the table follows x."""
    length, width = x.shape[1], x.shape[2]
    table_length = length if grid is None else num_cls + grid * grid
    if kind == "learned":
        table = layers.learned_positions(module, name, table_length, width)
    elif kind == "sincos2d":
        table = sincos_2d(grid_side(table_length - num_cls), width)
        table = np.concatenate([np.zeros((num_cls, width), np.float32), table], axis=0)[None]
    else:  # the config rules check the key before anything is traced
        raise ValueError(f"unknown positions kind {kind!r}; kinds: {', '.join(KINDS)}")
    if table_length != length:
        table = resized_table(table, num_cls, grid_side(length - num_cls))
    return x + table.astype(x.dtype)


def resized_table(table, num_cls: int, side: int):
    """[1, num_cls + g * g, W] -> [1, num_cls + side * side, W]: the patch rows resized
    bilinearly on their 2-D grid (antialiased when shrinking); [CLS] rows kept."""
    cls_rows, patch_rows = table[:, :num_cls], table[:, num_cls:]
    grid, width = grid_side(patch_rows.shape[1]), patch_rows.shape[2]
    image = patch_rows.reshape(grid, grid, width)
    resized = jax.image.resize(image, (side, side, width), "linear", antialias=True)
    return jnp.concatenate([jnp.asarray(cls_rows), resized.reshape(1, side * side, width)], 1)
