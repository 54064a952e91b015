"""Per-example modes drawn with given probabilities, and their config rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def draw_modes(rng, batch_size: int, probabilities) -> jax.Array:
    """[B] int mode indices drawn independently with the given probabilities."""
    probabilities = jnp.asarray(probabilities, jnp.float32)
    return jax.random.choice(rng, len(probabilities), (batch_size,), p=probabilities)


def validate_probabilities(section: str, probabilities, modes) -> None:
    probabilities, key = tuple(probabilities), f"mask.{section}.probabilities"
    if len(probabilities) != len(modes) or min(probabilities) < 0:
        raise ValueError(
            f"config {key}={probabilities!r}: must be {len(modes)} probabilities "
            f"({', '.join(modes)})"
        )
    if abs(sum(probabilities) - 1.0) > 1e-6:
        raise ValueError(f"config {key}={probabilities!r}: must sum to 1")
