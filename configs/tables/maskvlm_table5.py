"""MaskVLM Table 5: which losses matter (ITC, ITM, MLM, MIM), Flickr30k R@1.

Each row pretrains configs/maskvlm.py with some of the four losses switched off (weight
0: the model then builds only what the rest need), then fine-tunes from it
(configs/retrieval_finetune.py) and evaluates retrieval. "ZS" columns are the
pretrained run's embedding retrieval.

Protocol: each row is fine-tuned and evaluated with the alignment losses it was
pretrained with, so that the table compares pretraining objectives and not a head
trained only during fine-tuning:
- rows with ITC and ITM: ITC + ITM fine-tuning (retrieval_finetune.py's default); "FT"
  columns are retrieval with each query's top k re-ranked by the ITM head (the ALBEF /
  MaskVLM protocol: `retrieval_itm/...`);
- the "ITC" row: ITC-only fine-tuning (`retrieval_finetune.py:{scale},losses=itc`): no
  fusion encoder, no ITM head, no re-ranking; its "FT" columns are the fine-tuned
  run's embedding retrieval (`retrieval/...`, set by the row's `metrics`);
- the "MLM+MIM" row (no ITC, no ITM in pretraining): ITC + ITM fine-tuning with
  re-ranking, like the full model. It has no embedding space to retrieve with until
  fine-tuning gives it one, and the paper's 76.08 / 90.30 is far above its ITC-only
  row's 65.10 / 80.10 and close to its ITM rows, which only an ITM re-ranker
  explains [?: the paper does not say; our reading].
The "no re-rank" columns are every fine-tuned run's embedding retrieval before
re-ranking (for the ITC row the same numbers as its FT columns).

Run (demo: 2-core CPU; ~3 min a row per seed, pretraining and fine-tuning; the embedded
shapes data stands in for CC3M-50% + COCO and Flickr30k):
  python -m mvl.tables configs/tables/maskvlm_table5.py --scale demo --seeds 3 \\
      --out configs/tables/results/maskvlm_table5_demo.md
Paper scale (ViT-B/16): Flickr30k in a folder with dataset_flickr30k.json and the
images. --benchmarks declares its 1k test split as every run's evaluation (the columns
then read flickr30k/... and flickr30k_itm/...) and makes each fine-tuning stage train
on its Karpathy train split (configs/retrieval_finetune.py):
  python -m mvl.tables configs/tables/maskvlm_table5.py --scale paper --dry-run \\
      --benchmarks flickr30k=/data/f30k
--dry-run prints each run's `python -m mvl.main` command, to launch on a pod; add the
pretraining data (--config.data.source=...) to the pretraining runs' commands (a
--config override here would reach the fine-tuning runs too), then rerun this command
without --dry-run to collect the table.

What it should reach: the paper's ordering (all four losses best; ITC alone far worst;
FT above ZS). The demo's 70-step rows cannot show gains the paper measured after 30
epochs of 4M pairs; configs/tables/results/ says which orderings hold at demo scale.

Reading (demo): under the earlier protocol (every row fine-tuned with ITC + ITM and
re-ranked, 3 seeds, 2026-12-03) the ITC row's FT R@1 was that of a 20-step-old ITM
head, which lowered it (IR / TR 3.9 / 3.9 re-ranked against 7.3 / 7.3 before
re-ranking), and ITC alone was still the best row. With each row tuned as it was
pretrained, the ITC row reads its ITC-only fine-tuned embeddings (seed 0, 2026-12-04:
9.2 / 6.6, above every ITM row of the earlier runs, 2.8-3.7 / 2.7-3.5). So the
protocol fix does not bring the paper's "ITC alone far worst" to the demo; it removes
an artefact that made the ITC row look worse than its embeddings are. The 3-seed rerun
with the other rows under the current code is in configs/tables/results/ once the
coordinator commits it; read that before this paragraph.
"""

from mvl.tables.spec import Column, Row, Stage, Table

OFF = 0.0
FINETUNE = "configs/retrieval_finetune.py:{scale}"  # ITC + ITM, re-ranked by ITM
# A row pretrained without ITM: fine-tuned with ITC alone, read without re-ranking.
ITC_ONLY = {
    "stage_configs": {"finetune": FINETUNE + ",losses=itc"},
    "metrics": {
        "FT IR": "retrieval/text_to_image/r@1",
        "FT TR": "retrieval/image_to_text/r@1",
    },
}
# Demo rows (~3 min each on 2 cores): 70 pretraining steps, 20 fine-tuning steps, on
# 500 held-out pairs; ZS columns read plain embedding retrieval, so the pretraining
# eval skips the ITM re-ranking.
DEMO = {
    "total_steps": 70,
    "checkpoint.every_steps": 35,
    "optim.warmup_steps": 10,
    "data.eval_size": 500,
    "evals.retrieval.itm_rerank_k": 0,
}
FINETUNE_DEMO = {
    "total_steps": 20,
    "checkpoint.every_steps": 20,
    "optim.warmup_steps": 3,
    "data.eval_size": 500,
}


NO_EMBEDDING_EVALS = {"evals.retrieval.type": "none", "evals.zeroshot.type": "none"}


def losses(itc=1.0, itm=1.0, mlm=1.0, mim=1.0) -> dict:
    return {
        "objectives.itc.weight": itc,
        "objectives.itm.weight": itm,
        "objectives.mlm.weight": mlm,
        "objectives.mim.weight": mim,
    }


def get_table() -> Table:
    return Table(
        name="maskvlm_table5",
        title="MaskVLM Table 5: loss ablation (Flickr30k R@1; demo: shapes val R@1)",
        source=(
            "MaskVLM (arXiv 2208.02131) Table 5, as summarised in docs/methods.md "
            "[REVIEW]: Flickr30k R@1 IR/TR, fine-tuned | zero-shot, 4M-pair pretraining."
        ),
        config="configs/maskvlm.py:{scale}",
        demo=DEMO,
        stages=(Stage("finetune", FINETUNE, demo=FINETUNE_DEMO),),
        columns=(
            # re-ranked by ITM; the ITC row reads its embedding retrieval (ITC_ONLY)
            Column("FT IR", "retrieval_itm/text_to_image/r@1", stage="finetune"),
            Column("FT TR", "retrieval_itm/image_to_text/r@1", stage="finetune"),
            Column("ZS IR", "retrieval/text_to_image/r@1"),
            Column("ZS TR", "retrieval/image_to_text/r@1"),
            # the fine-tuned run's embedding retrieval before ITM re-ranking: separates
            # what fine-tuning did from what the re-ranking head does (no paper number)
            Column("FT IR, no re-rank", "retrieval/text_to_image/r@1", stage="finetune"),
            Column("FT TR, no re-rank", "retrieval/image_to_text/r@1", stage="finetune"),
        ),
        rows=(
            Row(
                "ITC",
                losses(itm=OFF, mlm=OFF, mim=OFF),
                paper={"FT IR": 65.10, "FT TR": 80.10, "ZS IR": 55.08, "ZS TR": 68.40},
                **ITC_ONLY,
            ),
            Row(
                "ITC+ITM",
                losses(mlm=OFF, mim=OFF),
                paper={"FT IR": 79.96, "FT TR": 92.30, "ZS IR": 69.50, "ZS TR": 82.40},
            ),
            Row(
                "ITC+ITM+MLM",
                losses(mim=OFF),
                paper={"FT IR": 80.34, "FT TR": 92.00, "ZS IR": 70.74, "ZS TR": 84.40},
            ),
            Row(
                "ITC+ITM+MIM",
                losses(mlm=OFF),
                paper={"FT IR": 80.12, "FT TR": 91.50, "ZS IR": 69.26, "ZS TR": 82.90},
            ),
            Row(
                "ITC+ITM+MLM+MIM",
                losses(),
                paper={"FT IR": 81.26, "FT TR": 94.10, "ZS IR": 71.18, "ZS TR": 85.60},
            ),
            # No ITC: no embeddings to retrieve with zero-shot (the paper reports FT only);
            # fine-tuned with ITC + ITM and re-ranked (see the docstring's protocol).
            # No embeddings before fine-tuning: its pretraining run declares no retrieval
            # or zero-shot evaluation (they would refuse a model that embeds nothing).
            Row(
                "MLM+MIM",
                {**losses(itc=OFF, itm=OFF), **NO_EMBEDDING_EVALS},
                paper={"FT IR": 76.08, "FT TR": 90.30},
            ),
        ),
        # the losses, in pretraining and in fine-tuning; the evaluations they allow; the
        # fusion encoder, built only where ITM is fine-tuned
        varies=("objectives", "evals", "model.fusion"),
        paper_metrics={"retrieval/": "flickr30k/", "retrieval_itm/": "flickr30k_itm/"},
        notes=(
            "Demo rows pretrain 70 steps (batch 64, 64 px) and fine-tune 20, evaluated on "
            "500 held-out pairs; the paper pretrains 30 epochs on CC3M-50% + COCO. Read "
            "the demo for whether the machinery runs and for large effects only."
        ),
    )
