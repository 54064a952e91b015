"""MLIM: masked language and image modeling in one stream (Arici et al., arXiv 2109.12178).

Mask: modality-aware masking (MAM): per example, with equal probability [?], heavy image
      masking (80% of patches) with intact text, heavy text masking (80% of words) with
      intact image, or light masking (15% [?]) of both. Masking replaces an embedding by
      the learned [MASK] embedding in both modalities (words: no 80/10/10 mix; patches:
      the same [MASK] row of the token table). Modality dropout (MDO): per example the
      encoder sees text only / image only / both with probabilities 0.1 / 0.1 / 0.8 [?];
      a dropped modality is left out of attention and its loss.
Encoder: one transformer over [text tokens; patch embeddings of a shallow CNN], separate
      learned positions per modality, no segment embedding [?]. The CNN is mvl's ConvStem
      with log2(patch) non-overlapping 2x2 stride-2 convolutions (the paper reports 2x2
      kernels and 7 layers, ~200K parameters [?]; mvl stops when a token covers a patch).
Target: the pixels (masked area only by default [?]; `objectives.recon.region=all` scores
      the whole image); the ids of the masked words.
Head: a deconvolution decoder with a sigmoid output [?], scored by the sum of squared
      pixel errors per image averaged over images (RECON); BERT's two-layer MLM head (NLL).
      No alignment loss. MLM + RECON, unweighted.

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/mlim.py:demo --workdir /tmp/mvl_mlim
Without modality dropout, or scoring the whole image:
  ... --config.mask.modality_dropout.probabilities="(0,0,1)" --config.objectives.recon.region=all
Paper size (ViT-B-like single stream at 224 px; the paper's data is proprietary):
  python -m mvl.main --config configs/mlim.py:paper --workdir gs://...

What it should reach: MLIM has no contrastive head, so the evaluation reports held-out
MLM and RECON losses with both modalities and with each one dropped
(`eval.modalities`): the MLM loss with the image must be below the text-only one if the
model uses the image. It also reports MLIM's task on `shapes` items (two items match
when their main objects share shape and colour): `pair_matching/<mode>/average_precision`
beside `pair_matching/chance`. Paper: item-pair matching PR AUC 0.884 with MDO vs 0.864 without
[?], on proprietary e-commerce data; not reproducible here.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.base_config("paper" if "paper" in args else "demo")
    c.mask.image.update(kind="random", ratio=0.8, drop=False)  # ratios come from MAM
    c.mask.text.update(kind="bert", ratio=0.8, mask_prob=1.0, random_prob=0.0)
    c.mask.modality_aware.update(
        enabled=True, probabilities=(1 / 3, 1 / 3, 1 / 3), heavy_ratio=0.8, light_ratio=0.15
    )
    c.mask.modality_dropout.probabilities = (0.1, 0.1, 0.8)
    c.objectives.mlm = dict(weight=1.0, encoder="single_stream")
    c.objectives.recon = dict(weight=1.0, region="masked")
    # MLIM's "ITM instead of RECON" ablation (off): a match / no-match head on the
    # stream's [CLS], half of each batch's images swapped for another example's.
    c.objectives.stream_itm = dict(weight=0.0)
    c.eval.held_out_losses = True
    c.eval.modalities = ("both", "text_only", "image_only")
    c.eval.pair_matching = True  # MLIM's downstream task, under each modality mode
    return c
