"""Composition: MaskVLM + EMA-teacher feature targets (no paper trains this).

MaskVLM's masks, towers, fusion and heads, plus MaskCLIP's kind of target: a mean
(EMA) teacher copy of the image tower sees the full image, and a linear feature head on
the student's masked-image tokens predicts the teacher's features of the hidden patches
(cosine). The teacher starts as the student and follows it with momentum 0.996 -> 1.

Run (CPU demo):
  python -m mvl.main --config configs/maskvlm_ema.py:demo --workdir /tmp/mvl_maskvlm_ema

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
papers' benchmarks on disk, evaluated at the end: as in configs/clip.py).

`:paper` recipe: MaskVLM's (configs/maskvlm.py:paper: ALBEF-style, batch 512, 30
epochs of the 4M pairs, lr 1e-4 cosine to 1e-5, 256 px), plus the EMA teacher with
momentum 0.996 -> 1 on a cosine [?] (MaskCLIP's kind of teacher; its value unknown)
and feature loss weight 1 [?].

What it should reach: MaskVLM's demo metrics or better, and a falling feature loss.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    c = mvl_config.config_beside(__file__, "maskvlm.py", args.size)
    c.objectives.features = dict(weight=1.0, loss="cosine", head="linear")
    mvl_config.add_teacher(c, "ema")
    declare_benchmarks(c, args)
    c.lock()
    return c
