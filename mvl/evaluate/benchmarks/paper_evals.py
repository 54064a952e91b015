"""The papers' benchmark evaluations for a config, from config arguments naming where
the data is (`configs/clip.py:paper,imagenet=/data/imagenet/val,coco=/data/coco`):

  imagenet=DIR   ImageNet-1k val as an image folder DIR/<wnid>/<image> (1000 folders,
                 sorted = the standard label order): zero-shot top-1 / top-5 with CLIP's
                 class names and 80 templates (evals.imagenet)
  coco=DIR       DIR/dataset_coco.json (Karpathy) and the images, DIR/val2014/... or
                 DIR/<filename>: retrieval R@1/5/10 on the 5k test images (evals.coco)
  flickr30k=DIR  DIR/dataset_flickr30k.json and the images DIR/<filename> (or set
                 evals.flickr30k.images_dir): R@1/5/10 on the 1k test images

Each runs at the end of training (every_steps=0) and alone with
`python -m mvl.evaluate --checkpoint WORKDIR --eval coco`. Nothing is declared for an
argument left empty, so a config without the data on disk still runs.
"""

from __future__ import annotations

import os

BENCHMARK_ARGS = {"imagenet": "", "coco": "", "flickr30k": ""}


def declare_benchmarks(c, args, itm_rerank_k: int = 0):
    """Declares evals.imagenet / coco / flickr30k for the arguments that name a folder;
    `itm_rerank_k` > 0: retrieval also re-ranks each query's top k with the ITM head."""
    from mvl.config.evals import add_eval

    if args.imagenet:
        add_eval(c, "imagenet", type="zeroshot_benchmark", every_steps=0,
                 source="image_folder", path=args.imagenet, class_names="imagenet1k",
                 templates="openai_80")  # fmt: skip
    for name, karpathy in (("coco", "dataset_coco.json"), ("flickr30k", "dataset_flickr30k.json")):
        folder = args[name]
        if folder:
            add_eval(c, name, type="retrieval_benchmark", every_steps=0,
                     karpathy_json=os.path.join(folder, karpathy), images_dir=folder,
                     split="test", itm_rerank_k=itm_rerank_k)  # fmt: skip
