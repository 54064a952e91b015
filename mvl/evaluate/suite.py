"""The evaluations the loop runs every N steps and at the end, as one flat dict.

Zero-shot classification of the main object's shape and colour on held-out `shapes`
images (prompt ensembles), and image<->text retrieval R@1/5/10 on held-out pairs; each
metric is written beside its chance level.
"""

from __future__ import annotations

import numpy as np

from mvl.data import pipeline, shapes
from mvl.evaluate import gather, retrieval, zeroshot
from mvl.evaluate.embeddings import Embedder
from mvl.evaluate.losses import HeldOutLosses


def load_eval_set(cfg, tokenizer, process_index: int, process_count: int) -> dict:
    """This process's share of the first `data.eval_size` val examples, as numpy arrays."""
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
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


class EvalSuite:
    """Retrieval and zero-shot when the model embeds both modalities (it has projections);
    held-out objective losses when `eval.held_out_losses` (e.g. MAE, which embeds nothing)."""

    def __init__(
        self,
        model,
        cfg,
        tokenizer,
        mesh,
        process_index: int = 0,
        process_count: int = 1,
        teacher_model=None,
    ):
        self.cfg, self.tokenizer, self.mesh = cfg, tokenizer, mesh
        self.embeds = "projections" in model.components
        self.embedder = Embedder(model, mesh, cfg.eval.batch_size)
        self.data = load_eval_set(cfg, tokenizer, process_index, process_count)
        self.labels = {
            task: gather.in_global_order(self.data[task], cfg.eval.batch_size)
            for task in ("shape", "colour")
        }
        self.losses = HeldOutLosses(model, cfg, tokenizer.vocab_size, mesh, teacher_model)

    def run(self, state) -> dict[str, float]:
        metrics = {}
        if self.cfg.eval.held_out_losses:
            metrics.update(self.losses.run(state.params, self.data, state.teacher))
        if self.embeds:
            metrics.update(self.embedding_metrics(state.params))
        return metrics

    def embedding_metrics(self, params) -> dict[str, float]:
        image_emb = self.embedder.images(params, self.data["image"])
        text_emb = self.embedder.texts(params, self.data["text"])
        metrics = retrieval.retrieval_metrics(image_emb, text_emb)
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
        return self.embedder.texts(params, ids, same_on_every_process=True)
