"""FLIP: CLIP trained on a random subset of image patches (Li et al., CVPR 2023).

Mask: per-example random patch masking, ratio 0.5 (`mask.image.ratio`; the paper also
      runs 0.75), hidden patches DROPPED: the image encoder runs on the visible tokens only.
Encoder: ViT on visible tokens + text transformer. Target: the paired other modality.
Head: projections, symmetric InfoNCE (ITC) on the masked image's embedding.
Optimiser: AdamW betas (0.9, 0.95), weight decay 0.2, no decay on biases, norms and
embeddings (mvl decays kernels only).

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/flip.py:demo --workdir /tmp/mvl_flip
  python -m mvl.main --config configs/flip.py:demo,ratio=0.75 --workdir /tmp/mvl_flip75
Unmasked tuning (ratio 0, full images, lower lr) starting from a FLIP run's parameters:
  python -m mvl.main --config configs/flip.py:demo,tune --workdir /tmp/mvl_flip_tuned \
      --config.init.checkpoint=/tmp/mvl_flip
Paper size (ViT-B/16 at 224 px; the paper's headline is ViT-L/16):
  python -m mvl.main --config configs/flip.py:paper --workdir gs://...

What it should reach: evaluation always encodes full images. Paper (ViT-L/16, LAION-400M,
6.4 epochs): ImageNet zero-shot 69.6 at 50% masking and 68.2 at 75%, after full-image
inference; speedup up to 3.7x [?]. On the demo: retrieval and colour zero-shot well
above chance, somewhat below configs/clip.py:demo at the same number of steps.
The tuning stage's length and lr (10% of pretraining steps at 0.2x lr here) are
unverified defaults [?]; the paper tunes briefly on the same data.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config("paper" if "paper" in args else "demo")
    c.optim.update(b2=0.95, weight_decay=0.2)
    if "tune" in args:  # unmasked tuning: full images, from init.checkpoint's parameters
        c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=False)
        c.total_steps = max(1, c.total_steps // 10)
        c.optim.update(lr=c.optim.lr * 0.2, warmup_steps=max(1, c.optim.warmup_steps // 10))
        return c
    c.mask.image.update(kind="random", ratio=float(args.get("ratio", 0.5)), drop=True)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    return c
