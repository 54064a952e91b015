"""Composition: SigLIP + frozen-CLIP feature prediction on the masked image.

Mask: 40% of the patches in blocks, replaced by a mask token (for the feature objective
only; the sigmoid loss sees the full image). Encoder: ViT + text transformer.
Target: the paired text (sigmoid loss) and a frozen CLIP image tower's per-patch
features (cosine). No paper trains this.

Run (CPU demo; the teacher is a CLIP run):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/siglip_mvp.py:demo --workdir /tmp/mvl_siglip_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip

What it should reach: SigLIP's demo metrics, and a falling feature loss.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config("paper" if "paper" in args else "demo")
    c.mask.image.update(kind="block", ratio=0.4, block_size=2, drop=False)
    c.objectives.siglip = dict(weight=1.0, masked_image=False)
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    c.teacher.kind = "frozen"
    return c
