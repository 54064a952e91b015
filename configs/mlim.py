"""MLIM: masked language and image modeling in one stream (Arici et al., arXiv 2109.12178).

Mask: modality-aware masking (MAM): per example, with equal probability [?], heavy image
      masking (80% of patches) with intact text, heavy text masking (80% of words) with
      intact image, or light masking (15% [?]) of both. Masking replaces an embedding by
      the learned [MASK] embedding in both modalities (words: no 80/10/10 mix; patches:
      the same [MASK] row of the token table). Modality dropout (MDO) is OFF in
      pretraining: MLIM uses it for the downstream pair-matching model
      (configs/mlim_pair_matching.py fine-tunes with it). The earlier reading, MDO while
      pretraining, stays a key: mask.modality_dropout.probabilities=(0.1, 0.1, 0.8)
      (text only / image only / both per example [?]; a dropped modality is left out
      of attention and its loss).
Encoder: one transformer over [text tokens; patch embeddings of a shallow CNN], separate
      learned positions per modality, no segment embedding [?]. The CNN is mvl's ConvStem
      with log2(patch) non-overlapping 2x2 stride-2 convolutions (the paper reports 2x2
      kernels and 7 layers, ~200K parameters [?]; mvl stops when a token covers a patch).
Target: the pixels (masked area only by default [?]; `objectives.recon.region=all` scores
      the whole image); the ids of the masked words.
Head: a deconvolution decoder with a sigmoid output [?], scored by RECON, "an average
      of pixel-wise SSE" [SEC] read as each pixel's SSE over its channels averaged
      over the scored pixels (objectives.recon.reduction="sse_mean_over_pixels" [?];
      "mean_over_values" divides by 3; "sum_per_image", mvl's earlier default, sums
      12k-120k squared errors per image and drowns MLM's gradient under the clip:
      docs/methods.md has the measured per-objective gradient norms); BERT's two-layer
      MLM head (NLL). No alignment loss. MLM + RECON, unweighted.

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/mlim.py:demo --workdir /tmp/mvl_mlim
With modality dropout in pretraining (the earlier reading), or scoring the whole image:
  ... --config.mask.modality_dropout.probabilities="(0.1,0.1,0.8)" --config.objectives.recon.region=all
Per-objective gradient norms (grad_norm/mlm, grad_norm/recon) every 10 steps, at the
cost of one extra backward pass per objective on those steps:
  ... --config.objective_grad_norm_every=10
Then MLIM's downstream stage, pair matching fine-tuned with modality dropout:
  python -m mvl.main --config configs/mlim_pair_matching.py:demo --workdir /tmp/mvl_mlim_pm \
      --config.init.checkpoint=/tmp/mvl_mlim --config.data.tokenizer=/tmp/mvl_mlim/tokenizer.model
Paper recipe (a BERT-base-sized single stream at 224 px; the paper's data is proprietary):
  python -m mvl.main --config configs/mlim.py:paper --workdir gs://...

Config argument: demo | paper (nothing else).

`:paper` recipe. The MLIM paper gives almost none of its training recipe and has no
code, so nearly every value is a documented guess [?]: BERT-base's pretraining recipe,
which MLIM's BERT-style stream suggests. Per value:
  batch_size 256 [?]; 1,000,000 steps [?] (BERT's; the paper's e-commerce data is not
      public, so no epoch count is derived); 10,000 warmup steps, cosine to 0 [?]
  optim: AdamW lr 1e-4, b1 0.9, b2 0.999, eps 1e-6, weight_decay 0.01 on every weight
      but biases and norms [?] (BERT's)
  stream: 12 layers, width 768, 12 heads [?]; CNN patch stem of 2x2 stride-2
      convolutions [?] (the paper reports 2x2 kernels, 7 layers, ~200K parameters)
      down to 16-px tokens; 224 px [?]
  text: a 30522-piece SentencePiece trained from the captions (BERT's vocabulary size)
      [?]; 64 tokens [?]
  masking: MAM 1/3 each [?], heavy 80% [SEC], light 15% [?]; no MDO (downstream only)
  augmentation: the centre crop only, no flip [?] (the paper names none)

What it should reach: MLIM has no contrastive head, so the evaluation reports held-out
MLM and RECON losses with both modalities and with each one dropped
(`evals.held_out_losses.modalities`): the MLM loss with the image must be below the
text-only one if the model uses the image. It also reports MLIM's task on `shapes` items (two items match
when their main objects share shape and colour): `pair_matching/<mode>/average_precision`
beside `pair_matching/chance` (cosine of the pooled items, no fine-tuning);
configs/mlim_pair_matching.py reports the fine-tuned matcher's. Paper: item-pair
matching PR AUC 0.884 with MDO vs 0.864 without [?], on proprietary e-commerce data;
not reproducible here.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config(args.size)
    mvl_config.add_model_parts(c, args.size, "single_stream", "deconv_decoder")
    c.mask.image.update(kind="random", ratio=0.8, drop=False)  # ratios come from MAM
    c.mask.text.update(kind="bert", ratio=0.8, mask_prob=1.0, random_prob=0.0)
    c.mask.modality_aware.update(
        enabled=True, probabilities=(1 / 3, 1 / 3, 1 / 3), heavy_ratio=0.8, light_ratio=0.15
    )
    # MDO belongs to the downstream pair matcher (configs/mlim_pair_matching.py); the
    # pretraining variant is this key at (0.1, 0.1, 0.8).
    c.mask.modality_dropout.probabilities = (0.0, 0.0, 1.0)
    c.objectives.mlm = dict(weight=1.0, encoder="single_stream")
    c.objectives.recon = dict(weight=1.0, region="masked", reduction="sse_mean_over_pixels")
    # MLIM's "ITM instead of RECON" ablation (off): a match / no-match head on the
    # stream's [CLS], half of each batch's images swapped for another example's.
    c.objectives.stream_itm = dict(weight=0.0)
    modalities = ("both", "text_only", "image_only")
    mvl_config.add_eval(c, "held_out_losses", modalities=modalities)
    # MLIM's downstream task, under each modality mode
    mvl_config.add_eval(c, "pair_matching", modalities=modalities)
    mvl_config.add_eval(c, "reconstructions", every_steps=0)  # at the end
    if args.size == "paper":
        paper_recipe(c)
    return c


def paper_recipe(c):
    """MLIM's documented-guess recipe (BERT-base's; see the module docstring)."""
    c.update(batch_size=256, total_steps=1_000_000)
    # 256 pairs fit 8 H100s as they are; sharding parameters and optimizer state over
    # the host (full FSDP) is as fast at the roofline and frees memory (mvl/runtime/fit.py;
    # python -m mvl.compile --search, docs/paper_scale.md).
    c.fit.update(h100_1x1x8="mesh.fsdp=8")
    c.optim.update(
        lr=1e-4,
        warmup_steps=10_000,
        end_lr_factor=0.0,
        b1=0.9,
        b2=0.999,
        eps=1e-6,
        weight_decay=0.01,
        weight_decay_applies_to="all_but_gains_and_biases",
    )
    c.data.update(
        image_size=224,
        max_text_len=64,
        tokenizer_kind="sentencepiece",
        vocab_size=30522,
        tokenizer_captions=1_000_000,
        augment=False,
        crop="centre",
        flip=False,
    )
    mvl_config.set_image_tower(c, patch_size=16)
    c.model.text.update(max_len=64)
    c.model.single_stream.update(width=768, depth=12, num_heads=12, mlp_dim=3072)
