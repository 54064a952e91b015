"""Exact-count selection by random scores, and the indices of what stays visible."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def hide_lowest(scores: jax.Array, count: jax.Array | int) -> jax.Array:
    """True where a score ranks among the `count` lowest of its row."""
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    count = jnp.asarray(count)
    return ranks < (count[:, None] if count.ndim else count)


def visible_indices(hidden: jax.Array, num_hidden: int) -> jax.Array:
    """[B, N - num_hidden] indices of the visible patches, in ascending (raster) order.

    A stable sort puts False (visible) first and keeps their order, so an encoder that
    runs on these tokens only (MAE, FLIP) and a decoder that scatters them back see
    patches where they belong.
    """
    order = jnp.argsort(hidden, axis=1, stable=True)
    return order[:, : hidden.shape[1] - num_hidden]
