"""MAE: masked autoencoder on images only (He et al., CVPR 2022).

Mask: per-example random patch masking, ratio 0.75, hidden patches DROPPED
      (the encoder runs on the visible 25% only).
Encoder: ViT on visible tokens. Target: per-patch normalised pixels,
      (p - mean) / sqrt(var + 1e-6).
Head: a lighter decoder (paper: 8 blocks, width 512, 16 heads) that re-inserts a learned
      mask token at every hidden position; MSE averaged over the hidden patches.

Run (CPU demo, embedded `shapes` images):
  python -m mvl.main --config configs/mae.py:demo --workdir /tmp/mvl_mae
Paper recipe (ViT-B/16 encoder at 224 px, ImageNet-1k as data.source):
  python -m mvl.main --config configs/mae.py:paper --workdir gs://...

Config argument: demo | paper (nothing else).

`:paper` recipe, per value ([PAPER] the MAE paper, [CODE] facebookresearch/mae, [?]):
  batch_size 4096 [PAPER]; lr = 1.5e-4 x batch / 256 [PAPER] (2.4e-3 at 4096);
      AdamW b1 0.9, b2 0.95 [PAPER]; weight_decay 0.05 [PAPER] on every weight but
      biases and norms [CODE] (all_but_gains_and_biases); eps 1e-8 [CODE: torch default]
  length: 800 epochs (the paper's ablation length; 1600 for its best numbers) [PAPER] of
      ImageNet-1k's 1,281,167 images [PAPER]; 40 warmup epochs, cosine to 0 [PAPER]
  mask: 75% random, visible patches only [PAPER]; target normalised per patch [PAPER]
  encoder: ViT-B/16 at 224 px [PAPER]; fixed 2-D sin-cos positions [PAPER]
      (model.image.positions=sincos2d: no position parameter; [CLS] at position zero)
  decoder: 8 blocks, width 512, 16 heads [PAPER]; fixed 2-D sin-cos positions [PAPER]
      (model.pixel_decoder.positions=sincos2d); the decoder carries the encoder's [CLS]
      token through its blocks and drops it before the pixel prediction [CODE]
      (model.pixel_decoder.keep_cls=True)

`:demo` keeps learned positions and a decoder without [CLS] (positions=learned,
keep_cls=False, the defaults), so the README's demo numbers stay those it reports; set
model.image.positions / model.pixel_decoder.positions / model.pixel_decoder.keep_cls to
run the demo MAE's way.
  augmentation: random resized crop of 20-100% of the area (aspect 3/4-4/3) and a
      horizontal flip [CODE]; no colour jitter [PAPER]
  pixel normalisation: ImageNet's mean / std [CODE]

What it should reach: MAE has no text tower, so the evaluation reports the held-out
reconstruction loss (`held_out/mim/loss`), a linear probe and kNN on the frozen
encoder's mean-pooled features (`probe/{shape,colour}/{linear,knn}_accuracy`, beside
chance) and the PNG grid of reconstructions. Paper
(ViT-B/16, ImageNet-1k, 1600 epochs): 83.6 fine-tuned top-1; not reproduced here.
"""

from mvl import config as mvl_config

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config(args.size)
    mvl_config.add_model_parts(c, args.size, "pixel_decoder")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.objectives.mim = dict(weight=1.0, loss="mse", normalize=True, fusion=False)
    c.model.pixel_decoder.update(cross_attention=False)
    if args.size == "paper":
        paper_recipe(c)
    else:
        c.model.pixel_decoder.update(width=64, depth=2, num_heads=4, mlp_dim=256)
        c.optim.update(b2=0.95, weight_decay=0.05)
    mvl_config.add_eval(c, "held_out_losses")
    mvl_config.add_eval(c, "probe")  # linear probe + kNN on frozen image features
    mvl_config.add_eval(c, "reconstructions", every_steps=0)  # at the end
    return c


def paper_recipe(c):
    """MAE ViT-B/16's recipe (tags in the module docstring)."""
    c.batch_size = 4096
    mvl_config.schedule_in_epochs(c, epochs=800, num_examples=1_281_167, warmup_epochs=40)
    mvl_config.scale_lr_with_batch(c, base_lr=1.5e-4)
    c.optim.update(
        end_lr_factor=0.0,
        b1=0.9,
        b2=0.95,
        eps=1e-8,
        weight_decay=0.05,
        weight_decay_applies_to="all_but_gains_and_biases",
    )
    c.data.update(
        image_size=224,
        augment=False,
        crop="random_resized",
        crop_scale=(0.2, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
    )
    mvl_config.set_image_tower(
        c,
        patch_size=16,
        width=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        pixel_mean=IMAGENET_MEAN,
        pixel_std=IMAGENET_STD,
        positions="sincos2d",
    )
    c.model.pixel_decoder.update(
        width=512, depth=8, num_heads=16, mlp_dim=2048, positions="sincos2d", keep_cls=True
    )
