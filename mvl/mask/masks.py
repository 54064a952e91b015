"""The masks of one step: one typed structure whose fields are always present.

Unused fields hold the "nothing hidden" value of the right shape (all False, every
example kept, the uncorrupted ids, keep indices [B, 0]), so readers never probe for
keys. How hidden patches reach the image encoder is static (it changes shapes and
parameters), so it is a non-pytree field that jit treats as part of the program.
"""

from __future__ import annotations

import flax.struct
import jax

# How a masked image pass treats hidden patches.
NO_PATCHES_HIDDEN = "none"
REPLACE = "replace"  # hidden patches become a learned mask token (BEiT, MaskVLM)
DROP = "drop"  # hidden patches are left out of the encoder (MAE, FLIP)


@flax.struct.dataclass
class Masks:
    image_hidden: jax.Array  # bool [B, N]: True = patch hidden
    image_keep: jax.Array  # int [B, K]: visible patches when dropped; [B, 0] otherwise
    text_ids: jax.Array  # int [B, L]: the corrupted ids (the batch's ids when none)
    text_picked: jax.Array  # bool [B, L]: positions a text loss scores
    mam_mode: jax.Array  # int [B]: modality-aware masking's mode (0 when off)
    keep_text: jax.Array  # bool [B]: modality dropout keeps the text (True when off)
    keep_image: jax.Array  # bool [B]: modality dropout keeps the image (True when off)
    patches: str = flax.struct.field(pytree_node=False, default=NO_PATCHES_HIDDEN)
