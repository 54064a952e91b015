"""Composition: CLIP + MAE on one visible-patch pass (no paper trains exactly this).

Mask: 75% random patches, dropped. Encoder: ViT on the visible patches + text
transformer; the same visible-patch encoding feeds both heads. Target: the paired text
(ITC) and per-patch normalised pixels (MAE). Head: projections + InfoNCE; MAE's light
decoder, MSE on hidden patches. FLIP reports that adding an MAE loss to FLIP gives no
gain at LAION scale; this config lets you check that on your data.

Run (CPU demo):
  python -m mvl.main --config configs/clip_mae.py:demo --workdir /tmp/mvl_clip_mae

What it should reach: retrieval and colour zero-shot above chance (like FLIP at 75%),
and a falling reconstruction loss. No published numbers.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config("paper" if "paper" in args else "demo")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    c.objectives.mim = dict(weight=1.0, loss="mse", normalize=True, fusion=False)
    c.model.pixel_decoder.update(cross_attention=False)
    return c
