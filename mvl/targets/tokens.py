"""Token targets: the original ids at the positions text masking picked."""

from __future__ import annotations

import jax


def token_targets(batch, masks) -> tuple[jax.Array, jax.Array]:
    """(labels [B, L], scored [B, L]): the uncorrupted ids, scored where text masking
    picked a word and modality dropout kept the text (a dropped text has none to score)."""
    return batch["text"], masks.text_picked & masks.keep_text[:, None]
