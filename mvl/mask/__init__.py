"""Mask: which inputs a step hides, drawn from the step's rng inside jit.

`make_masks(cfg, batch, rng, vocab_size, special)` returns one typed `Masks`. Each mask
kind is a small registered function in this package (random, block, beit patches; bert
text masking); MLIM's modality-aware masking and modality dropout act on top of them.
Every kind hides an exact count per example, so ratios are exact up to rounding.
"""

from mvl.mask import beit, bert, block, none, random_patches  # noqa: F401  (register the kinds)
from mvl.mask.make import grid_of, make_masks, patch_handling, visible_count  # noqa: F401
from mvl.mask.masks import DROP, NO_PATCHES_HIDDEN, REPLACE, Masks  # noqa: F401
from mvl.mask.modality_aware import MAM_MODES  # noqa: F401
from mvl.mask.modality_dropout import MDO_MODES  # noqa: F401
from mvl.mask.registry import register_image_kind, register_text_kind  # noqa: F401
from mvl.mask.validate import validate  # noqa: F401
