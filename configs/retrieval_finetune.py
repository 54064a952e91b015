"""Retrieval fine-tuning: ITC + ITM (or ITC alone) on a retrieval train split, from a
pretrained run.

MaskVLM (like ALBEF) reports fine-tuned retrieval: the pretrained model is tuned with
the image-text contrastive and matching losses alone, no masking, then evaluated with
the ITM head re-ranking each query's top k (`evals.retrieval.itm_rerank_k`).
`losses=itc` fine-tunes with the contrastive loss alone and evaluates plain embedding
retrieval: no fusion encoder, no ITM head, no re-ranking (the protocol for a model
pretrained without ITM, e.g. MaskVLM Table 5's "ITC" row; giving it a freshly trained
ITM head would measure that head, not the pretraining).

Mask: none. Encoder: the base method's towers and cross-modal encoders (`base=`, default
maskvlm; any two-tower config: clip, siglip, flip, maskclip, ...). Target: the paired
other modality. Head: ITC projections + ITM head (`losses=itc+itm`: created fresh when
the pretrained run had none, hence init.strict=False: every parameter found there is
taken, the rest start fresh; the run prints how many arrays it took).

Run (demo: fine-tunes a configs/maskvlm.py:demo run on the shapes train split):
  python -m mvl.main --config configs/retrieval_finetune.py:demo --workdir /tmp/mvl_ft \\
      --config.init.checkpoint=/tmp/mvl_maskvlm \\
      --config.data.tokenizer=/tmp/mvl_maskvlm/tokenizer.model
  (base=clip etc.: configs/retrieval_finetune.py:demo,base=clip)
Paper size: fine-tunes on the Karpathy train split of the benchmark it names and is
evaluated on its test split (Flickr30k: train; COCO: train + restval, 113k images), read
by the data source karpathy:DIR/dataset_*.json:SPLITS (mvl/data/sources/karpathy.py):
  python -m mvl.main --config configs/retrieval_finetune.py:paper,flickr30k=/data/f30k \\
      --workdir gs://... --config.init.checkpoint=gs://.../maskvlm \\
      --config.data.tokenizer=gs://.../maskvlm/tokenizer.model
  (coco=/data/coco instead for COCO; naming both trains on neither: set data.source)

The pretraining run's tokenizer must be used (its token ids are what the parameters
learned); a different one is refused with an error naming both files.

What it should reach: paper (MaskVLM 4M, Flickr30k FT, Table 5 all losses) R@1 IR/TR
81.26/94.10 against 71.18/85.60 zero-shot. Demo: retrieval above the pretrained run's.
Config argument: demo | paper, base=<str> (default 'maskvlm'; the pretraining config's
name in configs/), losses=itc+itm | itc (default itc+itm: the fine-tuning losses; itc
also turns the ITM re-ranking off), imagenet=<dir>, coco=<dir>, flickr30k=<dir> (the benchmarks below).
Benchmarks: as in configs/clip.py (imagenet / coco / flickr30k data folders, evaluated
at the end of the run; mvl/evaluate/benchmarks/paper_evals.py).

`:paper` recipe: ALBEF's Flickr30k retrieval fine-tuning, which MaskVLM follows [SEC]:
10 epochs [CODE: ALBEF] of Flickr30k's Karpathy train split, 145k pairs (29k images x
5 captions; data.num_examples) [PAPER: Karpathy split] at batch 256 [CODE: ALBEF] ->
5664 steps; lr 1e-5, no warmup, cosine to 0 [CODE: ALBEF]; the base recipe's AdamW,
weight decay, tokenizer and towers; no masking; random resized crop 50-100% + flip
[CODE: ALBEF]. ALBEF fine-tunes at 384 px; mvl keeps the pretraining resolution
(changing it would need resized position tables) [?]. ALBEF's momentum distillation is
not used [?]. Demo: 60 steps at 0.2x the demo pretraining lr.
"""

from mvl import config as mvl_config
from mvl.evaluate.benchmarks.paper_evals import BENCHMARK_ARGS, declare_benchmarks

LOSSES = ("itc+itm", "itc")


def get_config(arg=None):
    args = mvl_config.parse_arg(arg, base="maskvlm", losses="itc+itm", **BENCHMARK_ARGS)
    base = args.base
    if args.losses not in LOSSES:
        raise mvl_config.ConfigError(
            f"configs/retrieval_finetune.py: config argument losses={args.losses!r} is not "
            f"one of {', '.join(LOSSES)}"
        )
    with_itm = args.losses == "itc+itm"
    c = mvl_config.config_beside(__file__, f"{base}.py", args.size)
    if "itc" not in c.objectives and "siglip" not in c.objectives:
        raise mvl_config.ConfigError(
            f"configs/retrieval_finetune.py: base={base} has no image-text embedding "
            "(itc or siglip objective); fine-tune a two-tower method"
        )
    c.objectives = {"itc": {"weight": 1.0, "max_scale": 100.0, "masked_image": False}}
    if with_itm:
        c.objectives.itm = {"weight": 1.0}
    c.mask.image.update(kind="none", ratio=0.0, drop=False)
    c.mask.text.update(kind="none", ratio=0.0)
    c.teacher = {"kind": "none"}  # no teacher (the base's, if any, is dropped)
    c.init.update(strict=False, required=True)
    if args.size == "paper":
        c.batch_size = 256
        mvl_config.schedule_in_epochs(c, epochs=10, num_examples=145_000)
        c.optim.update(lr=1e-5, warmup_steps=0, warmup_epochs=0.0, base_lr=0.0, end_lr_factor=0.0)
        c.data.update(crop="random_resized", crop_scale=(0.5, 1.0), flip=True, augment=False)
    else:
        c.total_steps = 60
        c.optim.update(lr=c.optim.lr * 0.2, warmup_steps=6)
    c.checkpoint.every_steps = min(c.checkpoint.every_steps, c.total_steps)
    # ITC + ITM only: ITM's fusion encoder (a clip base has none), no other part;
    # ITC alone: the two towers and their projections.
    kept = {"fusion"} if with_itm else set()
    for part in set(c.model) & set(mvl_config.PART_NAMES) - kept:
        del c.model[part]
    if with_itm and "fusion" not in c.model:  # at the text tower's width: its heads and MLP
        mvl_config.add_model_parts(c, args.size, "fusion")
        c.model.fusion.update(num_heads=c.model.text.num_heads, mlp_dim=c.model.text.mlp_dim)
    c.evals = {}
    rerank_k = (128 if args.size == "paper" else 16) if with_itm else 0
    mvl_config.add_eval(c, "retrieval", itm_rerank_k=rerank_k)
    mvl_config.add_eval(c, "zeroshot")
    declare_benchmarks(c, args, itm_rerank_k=rerank_k)
    if args.size == "paper":
        train_on_benchmark(c, args)
    return c


# The Karpathy training splits ALBEF / MaskVLM fine-tune on: (split file, pairs, epochs).
# Flickr30k: 29k images x 5 captions, 10 epochs [CODE: ALBEF]; COCO: 113k images (train +
# restval), 566,747 captions, 5 epochs [?: ALBEF's COCO retrieval config, not checked].
TRAIN_SPLITS = {
    "flickr30k": ("dataset_flickr30k.json:train", 145_000, 10),
    "coco": ("dataset_coco.json:train+restval", 566_747, 5),
}


def train_on_benchmark(c, args):
    """data.source = the named benchmark's Karpathy train split (one of coco / flickr30k)."""
    named = [name for name in TRAIN_SPLITS if args[name]]
    if len(named) != 1:
        return  # none or both: the user sets data.source (shapes data otherwise)
    split_file, pairs, epochs = TRAIN_SPLITS[named[0]]
    c.data.source = f"karpathy:{args[named[0]]}/{split_file}"
    mvl_config.schedule_in_epochs(c, epochs=epochs, num_examples=pairs)
