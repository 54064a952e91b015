"""The survey's Target axis: what should a masked image predict? Pixels, a frozen CLIP
tower's features (MVP), or a mean teacher's features (MaskCLIP); plus MaskCLIP's MLM.

Every row trains with one recipe, MaskCLIP's (SLIP's: optimizer, schedule, data,
image and text towers): the CLIP and CLIP+MAE rows take configs/maskclip.py's value of
every key in which their own configs differ from it, outside what the table varies
(`recipe()`; tests/test_table_recipes.py checks every table this way). Earlier the CLIP
and CLIP+MAE rows kept their own recipes (at demo: AdamW eps 1e-6 and weight decay 0.05
instead of 1e-8 and 0.5; at paper: OpenAI CLIP's batch, data, towers and optimizer), so
the target comparison also changed the recipe, and the frozen teacher inherited it.
The masked rows keep the same Mask (75% random patches, dropped) and Encoder (ViT +
text transformer, ITC on the masked image) and change the Target and its Head:
  CLIP                 no masked target (the baseline; also the frozen teacher below)
  pixels               per-patch normalised pixels, MAE decoder, MSE (configs/clip_mae.py)
  frozen CLIP features the CLIP row's image tower as a frozen teacher, MaskCLIP's
                       distillation head and loss (the MVP argument: semantic targets)
  EMA features         MaskCLIP without MLM: the student's own moving average as teacher
  EMA features + MLM   MaskCLIP in full
Paper numbers are MaskCLIP's target chain (Flickr30k zero-shot R@1 I2T/T2I); its
"features" step is a fixed feature target whose exact teacher the summary does not
give [?]: the frozen CLIP row is mvl's reading of it. CLIP's number is MaskCLIP's CLIP
baseline on the same data.

Run (demo, 2-core CPU, ~1-2 min a row per seed):
  python -m mvl.tables configs/tables/survey_targets.py --scale demo --seeds 3 \\
      --out configs/tables/results/survey_targets_demo.md
Paper scale (ViT-B/16, YFCC-15M in data.source of each run's command): the columns read
Flickr30k's 1k test split (and ImageNet zero-shot for the colour column), declared by --benchmarks:
  python -m mvl.tables configs/tables/survey_targets.py --scale paper --dry-run \\
      --benchmarks flickr30k=/data/f30k,imagenet=/data/imagenet/val

What it should reach: paper order EMA+MLM > EMA > features > pixels > CLIP on I2T; at
demo scale the masked rows see 25% of each image and train 100 steps, so CLIP (full
images) is expected to lead: the demo checks the machinery, not the claim.
"""

from mvl.tables.spec import Column, Row, Table

DEMO = {
    "total_steps": 100,
    "checkpoint.every_steps": 50,
    "optim.warmup_steps": 10,
    "data.eval_size": 500,
}
# What the rows change: the target and its head (objectives, decoders, teacher, the
# evaluation of reconstructions) and the mask that goes with it (CLIP sees full images,
# CLIP+MAE's text is not masked). `fit` holds only memory settings (remat) per machine.
VARIES = (
    "objectives",
    "teacher",
    "mask",
    "model.feature_decoder",
    "model.pixel_decoder",
    "model.text_decoder",
    "evals.reconstructions",
    "fit",
)
BASE = "configs/maskclip.py:{scale}"
OTHER_CONFIGS = ("configs/clip.py:{scale}", "configs/clip_mae.py:{scale}")


def flat(tree, prefix="") -> dict:
    items = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def recipe(scale: str) -> dict:
    """MaskCLIP's (SLIP's) values at `scale` of every key, outside VARIES, in which the
    CLIP or CLIP+MAE config differs from it: every row gets them, so all rows train
    with one recipe (optimizer, schedule, data, image and text towers)."""
    from mvl import config as config_lib

    base = flat(config_lib.load_config(BASE.format(scale=scale)).to_dict())
    found = {}
    for spec in OTHER_CONFIGS:
        other = flat(config_lib.load_config(spec.format(scale=scale)).to_dict())
        for key, value in other.items():
            varied = any(key == p or key.startswith(p + ".") for p in VARIES)
            if not varied and key in base and base[key] != value:
                found[key] = base[key]
    return found


def get_table() -> Table:
    return Table(
        name="survey_targets",
        title="Targets for masked images: pixels vs frozen CLIP features vs EMA features",
        source=(
            "MaskCLIP (arXiv 2208.12262) target-chain ablation and CLIP baseline, as "
            "summarised in docs/methods.md [REVIEW]: Flickr30k zero-shot R@1."
        ),
        config=BASE,
        demo={**recipe("demo"), **DEMO},
        paper=recipe("paper"),
        varies=VARIES,
        columns=(
            Column("ZS I2T", "retrieval/image_to_text/r@1"),
            Column("ZS T2I", "retrieval/text_to_image/r@1"),
            Column("ZS colour", "zeroshot/colour/accuracy"),
        ),
        rows=(
            Row("CLIP", config="configs/clip.py:{scale}", paper={"ZS I2T": 52.9, "ZS T2I": 32.8}),
            Row(
                "pixels (CLIP+MAE)",
                config="configs/clip_mae.py:{scale}",
                paper={"ZS I2T": 57.3, "ZS T2I": 41.1},
            ),
            Row(
                "frozen CLIP features",
                {
                    "objectives.mlm.weight": 0.0,
                    "teacher.kind": "frozen",
                    "teacher.checkpoint": "{workdir:CLIP}",
                },
                paper={"ZS I2T": 62.3, "ZS T2I": 41.4},
            ),
            Row(
                "EMA features",
                {"objectives.mlm.weight": 0.0},
                paper={"ZS I2T": 65.0, "ZS T2I": 41.6},
            ),
            Row("EMA features + MLM", paper={"ZS I2T": 70.1, "ZS T2I": 45.6}),
        ),
        paper_metrics={"retrieval/": "flickr30k/", "zeroshot/colour/accuracy": "imagenet/top1"},
        notes=(
            "Demo rows train 100 steps (batch 64, 64 px), evaluated on 500 held-out "
            "pairs; the paper trains 25 epochs of YFCC-15M. ZS colour (8 classes, "
            "chance 12.5) has no paper counterpart."
        ),
    )
