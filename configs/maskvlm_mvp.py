"""Composition: MaskVLM + frozen-CLIP feature targets (MVP's target on MaskVLM's mask).

Mask: MaskVLM's (image 60% in blocks, replaced; text 30% BERT). Encoder: MaskVLM's towers
and cross-modal encoders. Target: pixels and token ids as in MaskVLM, plus a frozen CLIP
image tower's per-patch features of the hidden patches (as in configs/mvp.py: after the
tower's final LayerNorm, `ln_post`, on every patch token, no projection [?]). Head: MaskVLM's heads + a linear
feature head (cosine). The masked-image encoding is computed once and shared by MIM and
the feature objective. No paper trains this; MVP and MaskCLIP argue that feature targets
beat pixel targets, which this config lets you test inside MaskVLM.

Run (CPU demo; the teacher is a CLIP run):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
  python -m mvl.main --config configs/maskvlm_mvp.py:demo --workdir /tmp/mvl_maskvlm_mvp \\
      --config.teacher.checkpoint=/tmp/mvl_clip

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
papers' benchmarks on disk, evaluated at the end: as in configs/clip.py).

`:paper` recipe: MaskVLM's (configs/maskvlm.py:paper: ALBEF-style, batch 512, 30
epochs of the 4M pairs, lr 1e-4 cosine to 1e-5) at 224 px instead of 256 [?], so the
patch grid (14x14) matches MVP's frozen CLIP ViT-B/16 teacher at 224 px [PAPER: MVP]
(teacher.checkpoint; teacher.image below describes OpenAI's ViT-B/16 until the
checkpoint's own architecture replaces it), and feature loss weight 1 [?].

What it should reach: MaskVLM's demo metrics or better, and a falling feature loss.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    c = mvl_config.config_beside(__file__, "maskvlm.py", args.size)
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    mvl_config.add_teacher(c, "frozen")
    if args.size == "paper":
        mvl_config.set_image_tower(c, image_size=224)
        c.teacher.image.update(
            pre_norm=True,
            pixel_mean=(0.48145466, 0.4578275, 0.40821073),
            pixel_std=(0.26862954, 0.26130258, 0.27577711),
        )
        c.teacher.update(act="quick_gelu", ln_eps=1e-5)
    declare_benchmarks(c, args)
    c.lock()
    return c
