"""Composition: CLIP + MAE on one visible-patch pass (no paper trains exactly this).

Mask: 75% random patches, dropped. Encoder: ViT on the visible patches + text
transformer; the same visible-patch encoding feeds both heads. Target: the paired text
(ITC) and per-patch normalised pixels (MAE). Head: projections + InfoNCE; MAE's light
decoder, MSE on hidden patches. FLIP reports that adding an MAE loss to FLIP gives no
gain at LAION scale; this config lets you check that on your data.

Run (CPU demo):
  python -m mvl.main --config configs/clip_mae.py:demo --workdir /tmp/mvl_clip_mae

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
papers' benchmarks on disk, evaluated at the end: as in configs/clip.py).

`:paper` recipe: FLIP's (configs/flip.py:paper; its FLIP + MAE ablation is the published
run closest to this one): batch 32768, 32 epochs of LAION-400M, AdamW (0.9, 0.95), wd
0.2, lr 4e-6 x batch / 256, BERT-sized SentencePiece stand-in, 32 tokens, random
resized crop 50-100% + flip [CODE: FLIP]; at mask ratio 0.75 [PAPER: FLIP's 75% run];
MAE's decoder of 8 blocks, width 512, 16 heads [PAPER: MAE] and MAE loss weight 1 [?].

What it should reach: retrieval and colour zero-shot above chance (like FLIP at 75%),
and a falling reconstruction loss. No published numbers.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    if args.size == "paper":  # FLIP's recipe (at 75%), plus MAE's decoder
        c = mvl_config.config_beside(__file__, "flip.py", "paper,ratio=0.75")
        mvl_config.add_model_parts(c, args.size, "pixel_decoder")
        c.model.pixel_decoder.update(width=512, depth=8, num_heads=16, mlp_dim=2048)
    else:
        c = mvl_config.base_config(args.size)
        mvl_config.add_model_parts(c, args.size, "pixel_decoder")
        mvl_config.add_eval(c, "retrieval")
        mvl_config.add_eval(c, "zeroshot")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    c.objectives.mim = dict(weight=1.0, loss="mse", normalize=True, fusion=False)
    c.model.pixel_decoder.update(cross_attention=False)
    mvl_config.add_eval(c, "reconstructions", every_steps=0)  # at the end
    declare_benchmarks(c, args)
    c.lock()
    return c
