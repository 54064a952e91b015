"""MaskCLIP: CLIP + masked self-distillation + MLM (Dong et al., CVPR 2023).

Mask: image 75% random patches, dropped from the student's input (MAE-style [?]); text
      ~20% BERT masking for the MLM branch.
Encoder: ViT student + text transformer; an EMA (mean) teacher copy of the image tower
      sees the full image, momentum 0.996 -> 1 on a cosine [?].
Target: the teacher's per-patch features, turned into soft codeword distributions by an
      online quantizer (codebook of `objectives.distill.codebook_size` = 8192 [?], teacher
      temperature 0.04 [?], student 0.1 [?]; DINO/iBOT defaults); the masked token ids.
      The teacher has its own quantizer, an EMA of the student's codebook with the
      tower's momentum schedule (`objectives.distill.teacher_head="ema"`), and its scores
      are centred by a running mean (`center`, `center_momentum` 0.9), as in DINO / iBOT
      [?]; "shared" (the student's codebook, stop-gradient only) is the earlier design.
Head: a shallow transformer decoder that re-inserts the dropped patches and predicts the
      teacher features (depth `model.feature_decoder.depth` [?]), scored by cross-entropy
      of codeword distributions over the masked patches; a 4-layer text decoder then the
      MLM head. Loss = ITC + 0.05 distill + 0.05 MLM.
ITC runs on the student's masked-image embedding (`objectives.itc.masked_image=True`,
the default) [?]: one student pass on the 25% visible patches serves both the
contrastive and the distillation losses, as in FLIP, which is what makes MaskCLIP cost
about what CLIP costs; the paper's text does not settle it. `masked_image=False` gives ITC
a second student pass on the whole image (the distillation keeps the masked pass), so
"without distillation" is then plain CLIP + MLM rather than FLIP-75% + MLM; the
components table runs both (configs/tables/maskclip_components.py).

The teacher's health is logged (TensorBoard, and the tables' teacher columns):
`distill/teacher_perplexity`, exp of the entropy of the mean codeword distribution
(1 = every patch on one codeword), and `distill/teacher_entropy`, one patch's entropy
in nats (log of the codebook size = uniform targets); the train log warns once when the
perplexity falls below `objectives.distill.collapse_perplexity` (2). A toy run
(:demo, 150 steps, seed 0, codebook 512, log 512 = 6.24) showed: "ema" with centring,
perplexity 197 -> 504 and entropy 4.95 -> 6.01 (near-uniform targets: the centre
removes what the young teacher's patches share, and little else is left to sharpen;
distillation loss stays near log 512); "shared" without centring, perplexity 65 -> 38
and entropy 3.98 -> 3.38, falling all run (fewer codewords, and the student's loss drops
to 3.89 by copying a target that hardly depends on the patch). In both, the targets'
information about the patch (log perplexity - entropy) is only 0.2 nats; retrieval and
zero-shot were alike (I2T R@1 3.9 vs 3.6%, colour 77 vs 79%). Neither design collapsed
onto one codeword in 150 steps; the shared one was heading that way.

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/maskclip.py:demo --workdir /tmp/mvl_maskclip
Paper recipe (ViT-B/16 on YFCC-15M; needs CLIP's BPE file and a pod):
  python -m mvl.main --config configs/maskclip.py:paper --workdir gs://... \
      --config.data.tokenizer=/path/to/bpe_simple_vocab_16e6.txt.gz

Config argument: demo | paper, imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the
papers' benchmarks on disk, evaluated at the end: as in configs/clip.py).

`:paper` recipe, per value ([PAPER] the MaskCLIP paper, [REVIEW] a review checked
against it, [CODE] SLIP's code, whose CLIP recipe MaskCLIP follows, [?] a guess):
  batch_size 4096 [REVIEW]; 25 epochs [REVIEW] of YFCC-15M (data.num_examples 15M) [?];
      1 warmup epoch [CODE: SLIP]; cosine to 1e-5 (end_lr_factor 0.02) [?]
  optim: AdamW lr 5e-4, b1 0.9, b2 0.98, eps 1e-8, weight_decay 0.5 [CODE: SLIP], on
      every weight but biases and norms [CODE: SLIP] (all_but_gains_and_biases)
  image: ViT-B/16 at 224 px [REVIEW]; mask 75% random [REVIEW], dropped [?]
  teacher: EMA of the image tower, momentum 0.996 -> 1 on a cosine [?]
  text: 12 layers, width 512, 8 heads, context 77 [REVIEW], causal with end-token
      pooling [CODE: SLIP's CLIP text tower]; CLIP's BPE, 49408 ids [CODE: SLIP]
      (data.tokenizer_kind=clip_bpe: point data.tokenizer at the merges file)
  text decoder: 4 layers [REVIEW]; text mask ~20% [REVIEW]
  loss weights: distill 0.05, MLM 0.05 [REVIEW]; codebook 8192, temperatures 0.04 /
      0.1 [?] (DINO / iBOT defaults); teacher codebook an EMA of the student's, centre
      momentum 0.9 [?] (DINO / iBOT)
  embed_dim 512, temperature init 0.07 [CODE: SLIP]
  augmentation: random resized crop of 50-100% of the area (aspect 3/4-4/3), no flip
      [CODE: SLIP]

What it should reach: on the demo, retrieval and zero-shot near configs/clip.py:demo.
Paper (YFCC-15M, 25 epochs, batch 4096) [REVIEW]: ImageNet zero-shot 44.5 vs CLIP 37.6,
linear probe 73.7 vs 66.5, fine-tune 83.6 vs 80.5; Flickr30k zero-shot I2T/T2I
70.1/45.6 vs 52.9/32.8; COCO 41.4/25.5 vs 27.5/17.7. Not reproduced here.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, **BENCHMARK_ARGS)
    paper = args.size == "paper"
    c = mvl_config.base_config(args.size)
    mvl_config.add_model_parts(c, args.size, "feature_decoder", "text_decoder")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.mask.text.update(kind="bert", ratio=0.2)
    mvl_config.add_teacher(c, "ema")
    c.teacher.momentum = 0.996
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    c.objectives.distill = dict(
        weight=0.05,
        head="decoder",
        codebook_size=8192 if paper else 512,
        teacher_temperature=0.04,
        student_temperature=0.1,
        # The teacher's own head: "ema" (its codebook an EMA of the student's) or
        # "shared" (the student's codebook, stop-gradient only) [?: DINO / iBOT's is EMA].
        teacher_head="ema",
        center=True,  # centre the teacher's codeword scores (DINO / iBOT) [?]
        center_momentum=0.9,  # DINO / iBOT's centre momentum [?]
        # One warning line in the train log when the teacher's codeword perplexity
        # (mean over a logging interval) falls below this: distillation has collapsed.
        collapse_perplexity=2.0,
    )
    c.objectives.mlm = dict(weight=0.05, encoder="text_decoder")
    mvl_config.add_eval(c, "retrieval")
    mvl_config.add_eval(c, "zeroshot")
    c.optim.update(weight_decay=0.5, b1=0.9, b2=0.98, eps=1e-8)
    if paper:
        paper_recipe(c)
    declare_benchmarks(c, args)
    return c


def paper_recipe(c):
    """MaskCLIP ViT-B/16's recipe (tags in the module docstring)."""
    c.batch_size = 4096
    # What makes 4096 pairs fit, per hardware (mvl/runtime/fit.py; found and checked with
    # python -m mvl.compile --table, docs/paper_scale.md): mvl.main applies the
    # entry of the machine it runs on.
    c.fit.update(
        h100_1x1x8="model.remat=dots",
    )
    mvl_config.schedule_in_epochs(c, epochs=25, num_examples=15_000_000, warmup_epochs=1)
    c.optim.update(
        lr=5e-4,
        end_lr_factor=1e-5 / 5e-4,
        b1=0.9,
        b2=0.98,
        eps=1e-8,
        weight_decay=0.5,
        weight_decay_applies_to="all_but_gains_and_biases",
    )
    c.data.update(
        image_size=224,
        max_text_len=77,
        tokenizer_kind="clip_bpe",
        vocab_size=49408,
        augment=False,
        crop="random_resized",
        crop_scale=(0.5, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        flip=False,
    )
    mvl_config.set_image_tower(c, patch_size=16, width=768, depth=12, num_heads=12, mlp_dim=3072)
    c.model.text.update(
        max_len=77, width=512, depth=12, num_heads=8, mlp_dim=2048, causal=True, pool="last"
    )
    c.model.text_decoder.update(depth=4, num_heads=8, mlp_dim=2048)
    c.model.update(embed_dim=512, init_temperature=0.07)
