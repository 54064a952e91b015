"""Image<->text retrieval on COCO / Flickr30k as the papers report it: a Karpathy split
(5k COCO / 1k Flickr30k test images, 5 captions each), recall@1/5/10 in both directions
with every caption of an image counted (mvl/evaluate/multi_caption_retrieval.py).

    config.evals.coco = dict(type="retrieval_benchmark",
                             karpathy_json="/data/coco/dataset_coco.json",
                             images_dir="/data/coco/images", split="test")

Options: karpathy_json, images_dir (images_dir/filepath/filename or images_dir/filename);
split ("test", "val", ...); or instead of karpathy_json, pairs_file: a .csv (header
image,caption) / .jsonl ({"image", "caption"}) of pairs grouped by image, paths
relative to images_dir (mvl/evaluate/benchmarks/caption_table.py), or webdataset shards
of pairs (a .tar, a folder or glob of them; grouped by KEY.json's image_id_field, else by
identical image bytes: mvl/evaluate/benchmarks/webdataset_pairs.py); limit: only the
first N images and their captions (0 = all); chunk_images: images decoded and embedded at a time; block_size: similarity
rows computed at a time; itm_rerank_k: each query's top k re-ranked by the ITM head of
a model that has one (ALBEF / MaskVLM's fine-tuned numbers; 0 = off; reported beside
the plain recalls as <name>_itm/...; the image tower's tokens of every image are then
held on the host). Captions are tokenised to data.max_text_len.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mvl.evaluate import model_parts, multi_caption_retrieval, padding
from mvl.evaluate.benchmark_zeroshot import normalise
from mvl.evaluate.benchmarks import streaming
from mvl.evaluate.benchmarks.caption_table import read_caption_table
from mvl.evaluate.benchmarks.image_folder import ImageFiles
from mvl.evaluate.benchmarks.karpathy import CaptionedImages, read_karpathy_split
from mvl.evaluate.benchmarks.webdataset_pairs import read_webdataset_pairs
from mvl.evaluate.evaluator import Evaluator, check_positive, fail
from mvl.evaluate.registry import register

KS = (1, 5, 10)


@register("retrieval_benchmark")
class RetrievalBenchmark(Evaluator):
    defaults: ClassVar[dict] = dict(
        karpathy_json="",
        pairs_file="",
        images_dir="",
        split="test",
        limit=0,
        chunk_images=512,
        block_size=1024,
        itm_rerank_k=0,
        image_id_field="image_id",
    )

    @classmethod
    def validate(cls, where, section):
        check_positive(where, section, "chunk_images", "block_size")
        k = section["itm_rerank_k"]
        if not isinstance(k, int) or k < 0:
            fail(where, "itm_rerank_k", k, "must be an int >= 0 (0 = off)")
        if not isinstance(section["limit"], int) or section["limit"] < 0:
            fail(where, "limit", section["limit"], "must be an int >= 0 (0 = every image)")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if not model_parts.embeds(context.model):
            self.refuse("the model embeds no images and texts (no itc or siglip objective)")
        needs_dir = not is_webdataset(section.pairs_file)
        if bool(section.karpathy_json) == bool(section.pairs_file) or (
            needs_dir and not section.images_dir
        ):
            self.refuse(
                "set one of karpathy_json (dataset_coco.json / dataset_flickr30k.json) or "
                "pairs_file (.csv / .jsonl, with images_dir; or webdataset .tar shards)"
            )
        self.reranks = section.itm_rerank_k > 0 and model_parts.has_itm_head(context.model)
        self._data = None

    def run(self, state):
        data = self._benchmark()
        params, ctx = state.params, self.context
        embedder = ctx.embedder
        ids = ctx.tokenizer.encode(list(data.captions), ctx.cfg.data.max_text_len)
        text_emb = normalise(embedder.texts(params, ids).astype(np.float32))

        def embed(pixels):
            if not self.reranks:
                return embedder.images(params, pixels)
            return embedder.images(params, pixels), embedder.image_tokens(params, pixels)

        outputs = streaming.embed_all(
            embed,
            ImageFiles(data.image_paths) if data.images is None else data.images,
            ctx.cfg.data.image_size,
            self.section.chunk_images,
            self.where,
        )
        image_emb, image_tokens = outputs if self.reranks else (outputs, None)
        image_emb = normalise(image_emb.astype(np.float32))
        recall = multi_caption_retrieval.multi_caption_recall(
            image_emb, text_emb, data.caption_image, KS, self.section.block_size
        )
        metrics = {f"{self.name}/{k}": v for k, v in recall.items()}
        if self.reranks:
            text_tokens = embedder.text_tokens(params, ids)

            def itm_score(images, texts):
                """Pairs scored eval.batch_size at a time: only those pairs' tokens are
                gathered (COCO's 5k x k pairs at once would not fit)."""
                scores = []
                for start, stop in padding.chunks(len(images), ctx.cfg.eval.batch_size):
                    i, t = images[start:stop], texts[start:stop]
                    scores.append(
                        embedder.itm_scores(params, image_tokens[i], text_tokens[t], ids[t])
                    )
                return np.concatenate(scores)

            reranked = multi_caption_retrieval.reranked_multi_caption_recall(
                image_emb, text_emb, data.caption_image, itm_score, self.section.itm_rerank_k, KS
            )
            metrics.update({f"{self.name}_itm/{k}": v for k, v in reranked.items()})
        metrics[f"{self.name}/images"] = float(len(data.image_paths))
        metrics[f"{self.name}/captions"] = float(len(data.captions))
        return metrics

    def _benchmark(self) -> CaptionedImages:
        if self._data is None:
            section = self.section
            if is_webdataset(section.pairs_file):
                data = read_webdataset_pairs(section.pairs_file, section.image_id_field)
            elif section.pairs_file:
                data = read_caption_table(section.pairs_file, section.images_dir)
            else:
                data = read_karpathy_split(section.karpathy_json, section.images_dir, section.split)
            self._data = first_images(data, section.limit)
        return self._data


def first_images(data: CaptionedImages, limit: int) -> CaptionedImages:
    if not limit or limit >= len(data.image_paths):
        return data
    keep = data.caption_image < limit
    return CaptionedImages(
        data.image_paths[:limit],
        [c for c, k in zip(data.captions, keep) if k],
        data.caption_image[keep],
        None if data.images is None else data.images[:limit],
    )


def is_webdataset(pairs_file: str) -> bool:
    """A .tar shard, a folder of them or a glob of them (several joined by commas)."""
    import os

    first = pairs_file.split(",")[0].strip()
    return first.endswith(".tar") or os.path.isdir(first)
