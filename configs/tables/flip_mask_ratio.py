"""FLIP: mask ratio against accuracy and speed.

Rows are configs/flip.py at mask ratio 0 (CLIP on full images), 0.5 and 0.75, hidden
patches dropped from the image encoder; evaluation always encodes full images.
Columns: zero-shot accuracy (paper: ImageNet, ViT-L/16 on LAION-400M; demo stand-in:
colour of the main object), retrieval R@1, and training steps/s relative to ratio 0
(median of the logged steps/s after the first interval, which includes the compile).

Run (demo, 2-core CPU, ~1 min a row per seed):
  python -m mvl.tables configs/tables/flip_mask_ratio.py --scale demo --seeds 1 \\
      --out configs/tables/results/flip_mask_ratio_demo.md

Paper scale (ViT-L/16 in the paper; configs/flip.py:paper is B/16): ImageNet val as an
image folder, evaluated at the end of each run (the zero-shot column then reads
imagenet/top1, the retrieval column COCO's 5k test split):
  python -m mvl.tables configs/tables/flip_mask_ratio.py --scale paper --dry-run \\
      --benchmarks imagenet=/data/imagenet/val,coco=/data/coco

What it should reach: paper: 69.6 at 50%, 68.2 at 75% after full-image inference, and
a speedup that grows with the ratio (up to 3.7x reported [?]; open_clip's patch
dropout claims 2-3x). Demo: speedup clearly above 1 (the image tower is a smaller part
of a demo step than of ViT-L's), accuracy a little below ratio 0 at equal steps.
"""

from mvl.tables.spec import Column, Row, Table

DEMO = {
    "total_steps": 100,
    "checkpoint.every_steps": 50,
    "optim.warmup_steps": 10,
    "data.eval_size": 500,
    "log_every_steps": 10,  # more steps/s readings for the speed column
}
IN_ZS = "ZS (IN; demo: colour)"


def get_table() -> Table:
    return Table(
        name="flip_mask_ratio",
        title="FLIP: mask ratio vs zero-shot accuracy and training speed",
        source=(
            "FLIP (Li et al., CVPR 2023), as summarised in docs/methods.md: "
            "ImageNet zero-shot after full-image inference, ViT-L/16, LAION-400M."
        ),
        config="configs/flip.py:{scale}",
        demo=DEMO,
        varies=("mask.image.ratio",),
        columns=(
            Column(IN_ZS, "zeroshot/colour/accuracy"),
            Column("I2T R@1", "retrieval/image_to_text/r@1"),
            Column("speed vs 0%", "tensorboard:steps_per_sec", percent=False, relative_to="0%"),
        ),
        rows=(
            Row("0%", config="configs/flip.py:{scale},ratio=0.0"),
            Row("50%", config="configs/flip.py:{scale},ratio=0.5", paper={IN_ZS: 69.6}),
            Row("75%", config="configs/flip.py:{scale},ratio=0.75", paper={IN_ZS: 68.2}),
        ),
        paper_metrics={
            "zeroshot/colour/accuracy": "imagenet/top1",
            "retrieval/": "coco/",
        },
        notes=(
            "Demo rows train 100 steps (batch 64, 64 px) on a shared 2-core CPU: speed "
            "ratios are measured within one table run, and noisy. The paper's speedup "
            "figure is not in the summary with a per-ratio breakdown, so it is not shown."
        ),
    )
