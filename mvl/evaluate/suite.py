"""The evaluations the loop runs every N steps and at the end, as one flat dict.

Image<->text retrieval R@1/5/10 on held-out pairs, from any source; where the held-out
source has shapes' labels (source.labels: shape, colour), also zero-shot classification
of the main object's shape and colour (prompt ensembles), MLIM's pair matching and,
with `eval.probe.enabled`, a linear probe and kNN on the image tower's frozen features
(any method with an image tower, MAE included). Real data has no such labels, so those
label tasks are left out for it. Each metric is written beside its chance level.

Every process reads the whole held-out set, in the order of the data stream, so every
evaluation sees the same rows in the same order whatever the process and device
counts; the towers run on the mesh `eval.batch_size` rows at a time, each batch padded
to the mesh's batch shards and the padding dropped (mvl/evaluate/padding.py), so no
size has to divide anything.
"""

from __future__ import annotations

import numpy as np

from mvl.data import pipeline, shapes
from mvl.errors import UserError
from mvl.evaluate import (
    itm_rerank,
    knn,
    linear_probe,
    pair_matching,
    retrieval,
    zeroshot,
)
from mvl.evaluate.embeddings import Embedder
from mvl.evaluate.losses import HeldOutLosses


def load_eval_set(cfg, tokenizer, process_index: int = 0, process_count: int = 1) -> dict:
    """The first `data.eval_size` val examples as numpy arrays, in stream order (with
    process_count > 1: this process's share of them, as a training stream splits rows)."""
    source = pipeline.source_for_config(cfg.data, "val", cfg.seed)
    dataset = pipeline.make_dataset(
        source,
        tokenizer,
        batch_size=cfg.eval.batch_size,
        max_text_len=cfg.data.max_text_len,
        seed=cfg.seed,
        shuffle=False,
        repeat=False,
        process_index=process_index,
        process_count=process_count,
        drop_remainder=False,
    )
    batches = list(dataset)
    if not batches:
        raise UserError(
            f"no usable held-out pairs in {source!r} (every sample was skipped; see the "
            "warnings above): check data.eval_source / data.eval_size"
        )
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


class EvalSuite:
    """Retrieval and zero-shot when the model embeds both modalities (it has projections);
    held-out objective losses when `eval.held_out_losses` (e.g. MAE, which embeds nothing).
    Every process loads the whole held-out set, so no process split is passed in.
    """

    def __init__(self, model, cfg, tokenizer, mesh, teacher_model=None):
        self.model, self.cfg, self.tokenizer, self.mesh = model, cfg, tokenizer, mesh
        parts = model.parts
        self.embeds = "image_projection" in parts
        self.probes = cfg.eval.probe.enabled and "image" in parts
        self.reranks = cfg.eval.itm_rerank_k > 0 and "itm_head" in parts
        self.matches_pairs = cfg.eval.pair_matching and (self.embeds or "single_stream" in parts)
        self.embedder = Embedder(model, mesh, cfg.eval.batch_size, cfg.eval.probe.pool)
        self.data = load_eval_set(cfg, tokenizer)  # all of it, on every process
        self.labels = {  # only the label tasks the held-out source provides
            task: self.data[task] for task in ("shape", "colour") if task in self.data
        }
        # Pair matching defines a match by shape and colour: shapes-labelled items only.
        self.matches_pairs = self.matches_pairs and set(self.labels) == {"shape", "colour"}
        self.losses = HeldOutLosses(model, cfg, tokenizer.vocab_size, mesh, teacher_model)

    def run(self, state) -> dict[str, float]:
        metrics = {}
        if self.cfg.eval.held_out_losses:
            metrics.update(self.losses.run(state.params, self.data, state.teacher))
        if self.embeds:
            metrics.update(self.embedding_metrics(state.params))
        if self.probes:
            metrics.update(self.probe_metrics(state.params))
        if self.matches_pairs:
            metrics.update(self.pair_matching_metrics(state.params))
        return metrics

    def pair_matching_metrics(self, params) -> dict[str, float]:
        """MLIM's task under each `eval.modalities` mode: items match when their main
        objects share shape and colour."""
        classes = self.labels["shape"] * len(shapes.COLOURS) + self.labels["colour"]
        metrics = {}
        for mode in self.cfg.eval.modalities:
            items = self.embedder.items(params, self.data["image"], self.data["text"], mode)
            result = pair_matching.pair_matching_metrics(items, classes)
            metrics[f"pair_matching/{mode}/average_precision"] = result["average_precision"]
            metrics["pair_matching/chance"] = result["chance"]
        return metrics

    def reranked_retrieval(self, params, image_emb, text_emb) -> dict[str, float]:
        image_tokens = self.embedder.image_tokens(params, self.data["image"])
        text_tokens = self.embedder.text_tokens(params, self.data["text"])
        ids = self.data["text"]

        def itm_score(images, texts):
            return self.embedder.itm_scores(
                params, image_tokens[images], text_tokens[texts], ids[texts]
            )

        return itm_rerank.reranked_retrieval_metrics(
            image_emb, text_emb, itm_score, self.cfg.eval.itm_rerank_k
        )

    def probe_metrics(self, params) -> dict[str, float]:
        """Linear probe and kNN per label task: fit on the even held-out rows, score on
        the odd ones (the held-out set is all there is at demo scale)."""
        features = self.embedder.image_features(params, self.data["image"])
        probe = self.cfg.eval.probe
        metrics = {}
        for task, labels in self.labels.items():
            classes = len(shapes.class_names(task))
            split = (features[0::2], labels[0::2], features[1::2], labels[1::2], classes)
            metrics[f"probe/{task}/linear_accuracy"] = linear_probe.linear_probe_accuracy(
                *split, steps=probe.steps
            )
            metrics[f"probe/{task}/knn_accuracy"] = knn.knn_accuracy(*split, k=probe.knn_k)
            metrics[f"probe/{task}/chance"] = 1.0 / classes
        return metrics

    def embedding_metrics(self, params) -> dict[str, float]:
        image_emb = self.embedder.images(params, self.data["image"])
        text_emb = self.embedder.texts(params, self.data["text"])
        metrics = retrieval.retrieval_metrics(image_emb, text_emb)
        if self.reranks:
            metrics.update(self.reranked_retrieval(params, image_emb, text_emb))
        for task, labels in self.labels.items():
            names = shapes.class_names(task)
            class_emb = zeroshot.class_embeddings(
                lambda texts: self._embed_prompts(params, texts),
                names,
                shapes.zeroshot_prompts(task),
            )
            metrics[f"zeroshot/{task}/accuracy"] = zeroshot.zeroshot_accuracy(
                image_emb, class_emb, labels
            )
            metrics[f"zeroshot/{task}/chance"] = 1.0 / len(names)
        return metrics

    def _embed_prompts(self, params, texts):
        ids = self.tokenizer.encode(list(texts), self.cfg.data.max_text_len)
        return self.embedder.texts(params, ids)
