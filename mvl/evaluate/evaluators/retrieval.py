"""Image<->text retrieval R@1/5/10 on the held-out pairs, with the model's embeddings;
with `itm_rerank_k` > 0 and a model with an ITM head, also each query's top k
re-ranked by that head (retrieval_itm/..., the ALBEF / MaskVLM protocol)."""

from __future__ import annotations

from typing import ClassVar

from mvl.evaluate import itm_rerank, model_parts, retrieval
from mvl.evaluate.evaluator import Evaluator, fail
from mvl.evaluate.registry import register


@register("retrieval")
class Retrieval(Evaluator):
    # itm_rerank_k: candidates re-ranked by the ITM head (0 = none; a model without
    # an ITM head, e.g. an ablation that switches ITM off, reports plain retrieval)
    defaults: ClassVar[dict] = dict(itm_rerank_k=0)

    @classmethod
    def validate(cls, where, section):
        k = section["itm_rerank_k"]
        if not isinstance(k, int) or k < 0:
            fail(where, "itm_rerank_k", k, "must be an int >= 0 (0 = off)")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if not model_parts.embeds(context.model):
            self.refuse("the model embeds no images and texts (no itc or siglip objective)")
        self.reranks = section.itm_rerank_k > 0 and model_parts.has_itm_head(context.model)

    def run(self, state):
        params = state.params
        image_emb = self.context.image_embeddings(params)
        text_emb = self.context.text_embeddings(params)
        metrics = retrieval.retrieval_metrics(image_emb, text_emb)
        if self.reranks:
            metrics.update(self._reranked(params, image_emb, text_emb))
        return metrics

    def _reranked(self, params, image_emb, text_emb):
        embedder, data = self.context.embedder, self.context.data
        image_tokens = embedder.image_tokens(params, data["image"])
        text_tokens = embedder.text_tokens(params, data["text"])
        ids = data["text"]

        def itm_score(images, texts):
            return embedder.itm_scores(params, image_tokens[images], text_tokens[texts], ids[texts])

        return itm_rerank.reranked_retrieval_metrics(
            image_emb, text_emb, itm_score, self.section.itm_rerank_k
        )
