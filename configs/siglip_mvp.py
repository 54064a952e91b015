"""Composition: SigLIP + frozen-CLIP feature prediction on the masked image.

Mask: 40% of the patches in blocks, replaced by a mask token (for the feature objective
only; the sigmoid loss sees the full image). Encoder: ViT + text transformer.
Target: the paired text (sigmoid loss) and a frozen CLIP image tower's per-patch
features (cosine; as in configs/mvp.py: after the tower's final LayerNorm, `ln_post`, on
every patch token, no projection [?]). No paper trains this.

Run (CPU demo; the teacher is a CLIP run):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/siglip_mvp.py:demo --workdir /tmp/mvl_siglip_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
papers' benchmarks on disk, evaluated at the end: as in configs/clip.py).

`:paper` recipe: SigLIP's (configs/siglip.py:paper: batch 32768, lr 1e-3, wd 1e-4,
AdamW b2 0.95, 16-token 32k SentencePiece stand-in, 224 px, centre crop), plus MVP's
mask (40% in blocks, here MaskVLM-style 2x2-patch blocks [?]) and frozen CLIP ViT-B/16
teacher at 224 px (teacher.checkpoint), feature loss weight 1 [?].

What it should reach: SigLIP's demo metrics, and a falling feature loss.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    c = mvl_config.config_beside(__file__, "siglip.py", args.size)
    c.mask.image.update(kind="block", ratio=0.4, block_size=2, drop=False)
    c.objectives.siglip = dict(weight=1.0, masked_image=False)
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    mvl_config.add_teacher(c, "frozen")
    if args.size == "paper":
        c.teacher.image.update(
            pre_norm=True,
            pixel_mean=(0.48145466, 0.4578275, 0.40821073),
            pixel_std=(0.26862954, 0.26130258, 0.27577711),
        )
        c.teacher.update(act="quick_gelu", ln_eps=1e-5)
        # The frozen teacher's forward pass on top of SigLIP's: 20.1 GiB per v5e chip with
        # SigLIP's remat=dots (docs/paper_scale.md), so full recomputation there.
        c.fit.v5e_16x16 = "model.remat=full"
    declare_benchmarks(c, args)
    c.lock()
    return c
