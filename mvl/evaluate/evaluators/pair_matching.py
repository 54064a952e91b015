"""MLIM's pair matching: average precision of the cosine similarity between held-out
items (image + text, or one of them under each `modalities` mode), two items matching
when every label task of their source gives them the same class (shapes: the main
object's shape and colour)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mvl.evaluate import labels, model_parts, pair_matching
from mvl.evaluate.evaluator import Evaluator
from mvl.evaluate.evaluators.modalities import check_model_drops, validate_modalities
from mvl.evaluate.registry import register


@register("pair_matching")
class PairMatching(Evaluator):
    # tasks: the label tasks that define a match, () = every one the source offers
    defaults: ClassVar[dict] = dict(modalities=("both",), tasks=())

    @classmethod
    def validate(cls, where, section):
        validate_modalities(where, section)

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        model = context.model
        if not (model_parts.embeds(model) or model_parts.single_stream(model)):
            self.refuse("the model embeds no items (no itc / siglip, no single stream)")
        check_model_drops(self, model)
        self.tasks = labels.chosen_tasks(
            self.where, section.tasks, context.label_tasks, context.source
        )

    def classes(self) -> np.ndarray:
        """One class per item: its labels of every task, as one mixed-radix number."""
        combined = np.zeros_like(self.tasks[0].labels)
        for task in self.tasks:
            combined = combined * len(task.class_names) + task.labels
        return combined

    def run(self, state):
        if not self.tasks:
            return {}
        data, classes, metrics = self.context.data, self.classes(), {}
        for mode in self.section.modalities:
            items = self.context.embedder.items(state.params, data["image"], data["text"], mode)
            result = pair_matching.pair_matching_metrics(items, classes)
            metrics[f"pair_matching/{mode}/average_precision"] = result["average_precision"]
            metrics["pair_matching/chance"] = result["chance"]
        return metrics
