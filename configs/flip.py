"""FLIP: CLIP trained on a random subset of image patches (Li et al., CVPR 2023).

Mask: per-example random patch masking, ratio 0.5 (`mask.image.ratio`; the paper also
      runs 0.75), hidden patches DROPPED: the image encoder runs on the visible tokens only.
Encoder: ViT on visible tokens + text transformer. Target: the paired other modality.
Head: projections, symmetric InfoNCE (ITC) on the masked image's embedding.

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/flip.py:demo --workdir /tmp/mvl_flip
  python -m mvl.main --config configs/flip.py:demo,ratio=0.75 --workdir /tmp/mvl_flip75
Unmasked tuning (ratio 0, full images, lower lr) starting from a FLIP run's parameters:
  python -m mvl.main --config configs/flip.py:demo,tune --workdir /tmp/mvl_flip_tuned \\
      --config.init.checkpoint=/tmp/mvl_flip
Paper recipe (ViT-B/16 on LAION-400M; the paper's headline is ViT-L/16):
  python -m mvl.main --config configs/flip.py:paper --workdir gs://... \\
      --config.data.source=webdataset:gs://.../laion400m

Config argument: demo | paper, ratio=<float> (default 0.5), tune (flag), imagenet=<dir>,
coco=<dir>, flickr30k=<dir> (the papers' benchmarks on disk: as in configs/clip.py).

`:paper` recipe, per value ([PAPER] the FLIP paper, [CODE] its official JAX code
(facebookresearch/flip, configs/default.py and cfg_flip_base.py), [?] a guess):
  batch_size 32768 [PAPER] (the code's default is 65536)
  length: 10000 "virtual ImageNet epochs" of 1,281,167 samples ~ 32 epochs of
      LAION-400M [CODE] -> epochs 32 of data.num_examples 400M; warmup 20 virtual
      epochs = 25.6M samples [CODE] -> optim.warmup_epochs 0.064; cosine to 0 [CODE]
  optim: AdamW b1 0.9, b2 0.95, weight_decay 0.2 [PAPER, CODE]; no decay on biases,
      norms, [CLS] and positions [CODE] (weight_decay_applies_to=kernels; mvl also
      spares the token table); lr = 4e-6 x batch / 256 [CODE] (5.12e-4 at 32768);
      eps 1e-8 [?] (optax's default, which the JAX code keeps)
  mask: ratio 0.5, visible tokens only [PAPER]
  image: 224 px, ViT-B/16 [PAPER]; fixed 2-D sin-cos positions as in MAE's ViT, which
      FLIP follows [CODE] (model.image.positions=sincos2d; `:demo` keeps learned
      positions so the README's demo numbers stay valid); the code pools by the mean of
      the tokens: mvl keeps [CLS] pooling [?]
  text: BERT's WordPiece (30523 ids), 32 tokens, non-causal [CODE]; a 30522-piece
      SentencePiece trained from the captions stands in (BERT's vocabulary file is not
      shipped); 12 layers, width 512, 8 heads [CODE]
  embed_dim 512 [CODE]; learnable temperature init 0.01 in the code [CODE] (mvl's CLIP
      init 0.07 is kept [?], a key: model.init_temperature)
  augmentation: random resized crop of 50-100% of the area, aspect 3/4-4/3, horizontal
      flip [CODE]; no jitter
  tune (the unmasked tuning stage): ratio 0, 10% of the pretraining steps at 0.2x lr
      [?] (the paper tunes briefly on the same data)

What it should reach: evaluation always encodes full images. Paper (ViT-L/16, LAION-400M,
6.4 epochs): ImageNet zero-shot 69.6 at 50% masking and 68.2 at 75%, after full-image
inference; speedup up to 3.7x [?]. On the demo: retrieval and colour zero-shot well
above chance, somewhat below configs/clip.py:demo at the same number of steps.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, ratio=0.5, tune=False, **BENCHMARK_ARGS)
    c = mvl_config.base_config(args.size)
    c.optim.update(b2=0.95, weight_decay=0.2)
    mvl_config.add_eval(c, "retrieval")
    mvl_config.add_eval(c, "zeroshot")
    if args.size == "paper":
        paper_recipe(c)
    declare_benchmarks(c, args)
    if args.tune:  # unmasked tuning: full images, from init.checkpoint's parameters
        c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=False)
        c.total_steps = max(1, c.total_steps // 10)
        c.optim.update(lr=c.optim.lr * 0.2, warmup_steps=max(1, c.optim.warmup_steps // 10))
        return c
    c.mask.image.update(kind="random", ratio=args.ratio, drop=True)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    return c


def paper_recipe(c):
    """FLIP ViT-B/16's recipe (tags in the module docstring)."""
    c.batch_size = 32768
    # What makes 32768 pairs fit, per hardware (mvl/runtime/fit.py; found and checked with
    # python -m mvl.compile --table, docs/paper_scale.md): mvl.main applies the
    # entry of the machine it runs on.
    c.fit.update(
        h100_1x1x8="model.remat=full",
        v5e_16x16="model.remat=dots",
        v5p_4x4x4="model.remat=dots",
    )
    mvl_config.schedule_in_epochs(
        c, epochs=32, num_examples=400_000_000, warmup_epochs=20 * 1_281_167 / 400_000_000
    )
    mvl_config.scale_lr_with_batch(c, base_lr=4e-6)
    c.optim.update(
        end_lr_factor=0.0,
        b1=0.9,
        b2=0.95,
        eps=1e-8,
        weight_decay=0.2,
        weight_decay_applies_to="kernels",
    )
    c.data.update(
        image_size=224,
        max_text_len=32,
        tokenizer_kind="sentencepiece",
        vocab_size=30522,
        tokenizer_captions=1_000_000,
        augment=False,
        crop="random_resized",
        crop_scale=(0.5, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=True,
    )
    mvl_config.set_image_tower(
        c, patch_size=16, width=768, depth=12, num_heads=12, mlp_dim=3072, positions="sincos2d"
    )
    c.model.text.update(max_len=32, width=512, depth=12, num_heads=8, mlp_dim=2048)
    c.model.update(embed_dim=512, init_temperature=0.07)
