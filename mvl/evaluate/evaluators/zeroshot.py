"""Zero-shot classification of the held-out images by the label tasks of their source
(class names in the source's prompt templates, ensembled), beside the chance level."""

from __future__ import annotations

from typing import ClassVar

from mvl.evaluate import labels, model_parts, zeroshot
from mvl.evaluate.evaluator import Evaluator
from mvl.evaluate.registry import register


@register("zeroshot")
class ZeroShot(Evaluator):
    # tasks: label tasks of the held-out source, () = every one it offers prompts for
    # (shapes: shape, colour; real image-text data: none, so nothing is reported)
    defaults: ClassVar[dict] = dict(tasks=())

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if not model_parts.embeds(context.model):
            self.refuse("the model embeds no images and texts (no itc or siglip objective)")
        self.tasks = labels.chosen_tasks(
            self.where, section.tasks, context.label_tasks, context.source, need_prompts=True
        )

    def run(self, state):
        params = state.params
        image_emb = self.context.image_embeddings(params) if self.tasks else None
        metrics = {}
        for task in self.tasks:
            class_emb = zeroshot.class_embeddings(
                lambda texts: self.context.embed_prompts(params, texts),
                task.class_names,
                task.prompts,
            )
            metrics[f"zeroshot/{task.name}/accuracy"] = zeroshot.zeroshot_accuracy(
                image_emb, class_emb, task.labels
            )
            metrics[f"zeroshot/{task.name}/chance"] = 1.0 / len(task.class_names)
        return metrics
