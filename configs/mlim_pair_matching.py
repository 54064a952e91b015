"""MLIM's downstream stage: pair matching fine-tuned with modality dropout, from an MLIM
pretraining run (configs/mlim.py).

MLIM's task is finding closely-matching item pairs; each item is an image and a text,
and the paper uses modality dropout (MDO) for this downstream model so it also matches
items seen as text only or image only [SEC]. The paper states neither the head, the
loss nor the MDO probabilities; mvl's reading [?]:

Mask: no word or patch masking (MAM is a pretraining device); MDO per item, text only /
      image only / both with probabilities 0.1 / 0.1 / 0.8 [?]
      (mask.modality_dropout.probabilities; (0, 0, 1) is the "without MDO" row of
      configs/tables/mlim_ablations.py).
Encoder: the pretrained single stream, every item encoded alone.
Target: whether two items of the batch match: they agree on every label in
      objectives.pair_match.labels (shapes: the main object's shape and colour).
Head: mvl/objectives/pair_match.py: the mean of the item's output tokens, a dense
      projection, and a learned scale x cosine + bias per pair; sigmoid cross-entropy
      over every pair of the batch. Created fresh (init.strict=False: every pretrained
      parameter found is taken; MLM's and RECON's heads are left behind).

Run (demo: fine-tunes a configs/mlim.py:demo run on the shapes train split, whose
shape / colour labels say which pairs match):
  python -m mvl.main --config configs/mlim_pair_matching.py:demo --workdir /tmp/mvl_mlim_pm \\
      --config.init.checkpoint=/tmp/mvl_mlim \\
      --config.data.tokenizer=/tmp/mvl_mlim/tokenizer.model
Paper size: the paper's item pairs are proprietary. Like configs/mlim.py:paper, the
`:paper` stage reads the generated shapes data (at 224 px) unless data.source is set;
a real source must provide the labels named in objectives.pair_match.labels (mvl's
real sources provide none today, so such a config is refused naming that key).

Evaluation: pair_matching (mvl/evaluate/evaluators/pair_matching.py) ranks every pair
of held-out items by the cosine of their head projections, which orders pairs exactly
as the head's score does, under each modality mode: `pair_matching/<mode>/
average_precision` (PR AUC) beside `pair_matching/chance`.

What it should reach: paper [?] (proprietary e-commerce data): PR AUC 0.884 with MDO,
0.864 without. Demo: above the pretrained run's un-tuned cosine PR AUC and far above
chance; with MDO, text-only and image-only PR AUC closer to both-modality PR AUC.
Config argument: demo | paper (nothing else). `:paper`: BERT-style fine-tuning [?]:
lr 2e-5, 10% warmup, 10,000 steps at batch 256, on the pretraining run's towers.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    c = mvl_config.config_beside(__file__, "mlim.py", args.size)
    c.objectives = dict(pair_match=dict(weight=1.0, labels=("shape", "colour")))
    c.mask.image.update(kind="none", ratio=0.0, drop=False)
    c.mask.text.update(kind="none", ratio=0.0)
    c.mask.modality_aware.enabled = False
    c.mask.modality_dropout.probabilities = (0.1, 0.1, 0.8)
    c.init.update(strict=False, required=True)
    del c.model["deconv_decoder"]  # RECON's head is not fine-tuned
    if args.size == "paper":
        c.update(batch_size=256, total_steps=10_000)
        c.optim.update(lr=2e-5, warmup_steps=1_000, end_lr_factor=0.0)
    else:
        c.total_steps = 60
        c.optim.update(lr=c.optim.lr * 0.5, warmup_steps=6)
    c.checkpoint.every_steps = min(c.checkpoint.every_steps, c.total_steps)
    c.evals = {}
    mvl_config.add_eval(
        c,
        "pair_matching",
        modalities=("both", "text_only", "image_only"),
        tasks=("shape", "colour"),
    )
    return c
