"""CLIP: the contrastive baseline (ITC only) on the same towers as MaskVLM.

Mask: none. Encoder: ViT + text transformer. Target: the paired other modality.
Head: linear projections, symmetric InfoNCE with a learnable temperature (init 0.07,
logit scale clipped at 100).

Run (CPU demo, same step budget as configs/maskvlm.py:demo):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
Paper size (ViT-B/16 at 224 px):
  python -m mvl.main --config configs/clip.py:paper --workdir gs://...

What it should reach: the demo's zero-shot and retrieval numbers are the baseline that
MaskVLM's demo is compared with in the README; at paper scale MaskVLM's Table 5 "ITC"
row (Flickr30k FT R@1 IR/TR 65.10/80.10) is the comparable setting [REVIEW].
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    size = "paper" if "paper" in args else "demo"
    c = mvl_config.base_config(size)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=False)
    return c
