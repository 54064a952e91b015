"""CLIP: the contrastive baseline (ITC only) (Radford et al., ICML 2021).

Mask: none. Encoder: ViT + text transformer. Target: the paired other modality.
Head: linear projections, symmetric InfoNCE with a learnable temperature (init 0.07,
logit scale clipped at 100).

Run (CPU demo, same step budget as configs/maskvlm.py:demo):
  python -m mvl.main --config configs/clip.py:demo --workdir /tmp/mvl_clip
Paper recipe (ViT-B/16; needs CLIP's BPE file and a pod):
  python -m mvl.main --config configs/clip.py:paper --workdir gs://... \\
      --config.data.source=webdataset:gs://.../shards \\
      --config.data.tokenizer=/path/to/bpe_simple_vocab_16e6.txt.gz

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
benchmarks below; default none).
Benchmarks (any size; mvl/evaluate/benchmarks/paper_evals.py): imagenet=DIR (ImageNet
val as DIR/<wnid>/<image>: zero-shot top-1/5, CLIP's names and 80 templates), coco=DIR
(DIR/dataset_coco.json + images), flickr30k=DIR (DIR/dataset_flickr30k.json + images):
5-caption retrieval R@1/5/10 on the Karpathy test split; run at the end, or alone:
  python -m mvl.evaluate --checkpoint WORKDIR --config configs/X.py:paper,coco=/data/coco \
      --eval coco

`:paper` recipe, per value ([PAPER] the CLIP paper's text, [CODE] OpenAI's / open_clip's
code, [?] a documented guess; docs/methods.md has the account):
  batch_size 32768 [PAPER]; 32 epochs [PAPER] of data.num_examples 400M pairs [PAPER]
      -> total_steps 390625
  optim: AdamW b1 0.9, b2 0.98, eps 1e-6 [PAPER, ViT table]; weight_decay 0.2 [PAPER];
      decay on every weight but gains and biases [PAPER]
      (weight_decay_applies_to=all_but_gains_and_biases); peak lr 5e-4 for ViT-B/16
      [PAPER]; 2000 warmup steps [PAPER]; cosine to 0 [PAPER]
  image: 224 px [PAPER]; ViT-B/16 width 768, 12 layers, 12 heads [PAPER]; ln_pre
      [CODE]; QuickGELU and LayerNorm eps 1e-5 [CODE]; CLIP's pixel mean / std [CODE]
  text: CLIP's BPE, 49408 ids, context 77 [PAPER] (data.tokenizer_kind=clip_bpe: point
      data.tokenizer at the merges file; mvl appends a [MASK] id, unused by CLIP);
      12 layers, width 512, 8 heads, causal, pooled at the end token [PAPER]
  embed_dim 512 [PAPER]; temperature init 0.07, logit scale clipped at 100 [PAPER]
  augmentation: "a random square crop from resized images", nothing else [PAPER]; mvl's
      nearest: a random resized square crop of 90-100% of the area (open_clip's
      scale (0.9, 1.0) [CODE]), no flip, no jitter

What it should reach: the demo's zero-shot and retrieval numbers are the baseline that
MaskVLM's demo is compared with in the README. Paper (ViT-B/16, WIT-400M): ImageNet
zero-shot 68.3 [PAPER]; at paper scale MaskVLM's Table 5 "ITC" row (Flickr30k FT R@1
IR/TR 65.10/80.10) is the comparable setting [REVIEW].
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    c = mvl_config.base_config(args.size)
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=False)
    mvl_config.add_eval(c, "retrieval")
    mvl_config.add_eval(c, "zeroshot")
    declare_benchmarks(c, args)
    if args.size == "paper":
        paper_recipe(c)
    return c


def paper_recipe(c):
    """CLIP ViT-B/16's recipe (tags in the module docstring); FLIP's and the
    compositions' configs start from it."""
    c.batch_size = 32768
    # What makes 32768 pairs fit, per hardware (mvl/runtime/fit.py; found and checked with
    # python -m mvl.compile --table, docs/paper_scale.md): mvl.main applies the
    # entry of the machine it runs on.
    c.fit.update(
        h100_1x1x8="model.remat=full",
        v5e_16x16="model.remat=dots",
        v5p_4x4x4="model.remat=dots",
    )
    mvl_config.schedule_in_epochs(c, epochs=32, num_examples=400_000_000)
    c.optim.update(
        lr=5e-4,
        warmup_steps=2000,
        end_lr_factor=0.0,
        b1=0.9,
        b2=0.98,
        eps=1e-6,
        weight_decay=0.2,
        weight_decay_applies_to="all_but_gains_and_biases",
    )
    c.data.update(
        image_size=224,
        max_text_len=77,
        tokenizer_kind="clip_bpe",
        vocab_size=49408,
        augment=False,
        crop="random_resized",
        crop_scale=(0.9, 1.0),
        crop_ratio=(1.0, 1.0),
        flip=False,
    )
    mvl_config.set_image_tower(
        c,
        patch_size=16,
        width=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        pre_norm=True,
        pixel_mean=CLIP_MEAN,
        pixel_std=CLIP_STD,
    )
    c.model.text.update(
        max_len=77, width=512, depth=12, num_heads=8, mlp_dim=2048, causal=True, pool="last"
    )
    c.model.update(embed_dim=512, init_temperature=0.07, act="quick_gelu", ln_eps=1e-5)
