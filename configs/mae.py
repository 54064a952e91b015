"""MAE: masked autoencoder on images only (He et al., CVPR 2022).

Mask: per-example random patch masking, ratio 0.75, hidden patches DROPPED
      (the encoder runs on the visible 25% only).
Encoder: ViT on visible tokens. Target: per-patch normalised pixels,
      (p - mean) / sqrt(var + 1e-6).
Head: a lighter decoder (paper: 8 blocks, width 512, 16 heads) that re-inserts a learned
      mask token at every hidden position; MSE averaged over the hidden patches.
Optimiser: AdamW betas (0.9, 0.95), weight decay 0.05, lr = 1.5e-4 * batch / 256.

Run (CPU demo, embedded `shapes` images):
  python -m mvl.main --config configs/mae.py:demo --workdir /tmp/mvl_mae
Paper size (ViT-B/16 encoder at 224 px):
  python -m mvl.main --config configs/mae.py:paper --workdir gs://...

What it should reach: MAE has no text tower, so the evaluation reports the held-out
reconstruction loss (`held_out/mim/loss`), a linear probe and kNN on the frozen
encoder's mean-pooled features (`probe/{shape,colour}/{linear,knn}_accuracy`, beside
chance) and the PNG grid of reconstructions. Paper
(ViT-B/16, ImageNet-1k, 1600 epochs): 83.6 fine-tuned top-1; not reproduced here.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    paper = "paper" in args
    c = mvl_config.base_config("paper" if paper else "demo")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.objectives.mim = dict(weight=1.0, loss="mse", normalize=True, fusion=False)
    c.model.pixel_decoder.update(cross_attention=False)
    if paper:
        c.model.pixel_decoder.update(width=512, depth=8, num_heads=16, mlp_dim=2048)
        c.optim.update(lr=1.5e-4 * c.batch_size / 256)
    else:
        c.model.pixel_decoder.update(width=64, depth=2, num_heads=4, mlp_dim=256)
    c.optim.update(b2=0.95, weight_decay=0.05)
    c.eval.held_out_losses = True
    c.eval.probe.enabled = True  # linear probe + kNN on frozen image features
    return c
