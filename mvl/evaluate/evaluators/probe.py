"""A linear probe (optax softmax regression, `steps` full-batch steps) and weighted kNN
(`knn_k` neighbours) on the image tower's frozen pooled features, per label task of the
held-out source: fit on its even rows, scored on the odd ones (the held-out set is all
there is at demo scale). Any method with an image tower, MAE included."""

from __future__ import annotations

from typing import ClassVar

from mvl.evaluate import knn, labels, linear_probe, model_parts
from mvl.evaluate.embeddings import POOLS
from mvl.evaluate.evaluator import Evaluator, check_positive, fail
from mvl.evaluate.registry import register


@register("probe")
class Probe(Evaluator):
    # pool: "mean" of the patch tokens or "cls"; tasks: () = every label task offered
    defaults: ClassVar[dict] = dict(pool="mean", steps=300, knn_k=20, tasks=())

    @classmethod
    def validate(cls, where, section):
        if section["pool"] not in POOLS:
            fail(where, "pool", section["pool"], f"must be one of {', '.join(POOLS)}")
        check_positive(where, section, "steps", "knn_k")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if not model_parts.has_image_tower(context.model):
            self.refuse("the model has no image tower to probe")
        self.tasks = labels.chosen_tasks(
            self.where, section.tasks, context.label_tasks, context.source
        )

    def run(self, state):
        if not self.tasks:
            return {}
        features = self.context.embedder.image_features(
            state.params, self.context.data["image"], self.section.pool
        )
        metrics = {}
        for task in self.tasks:
            classes = len(task.class_names)
            split = (features[0::2], task.labels[0::2], features[1::2], task.labels[1::2], classes)
            metrics[f"probe/{task.name}/linear_accuracy"] = linear_probe.linear_probe_accuracy(
                *split, steps=self.section.steps
            )
            metrics[f"probe/{task.name}/knn_accuracy"] = knn.knn_accuracy(
                *split, k=self.section.knn_k
            )
            metrics[f"probe/{task.name}/chance"] = 1.0 / classes
        return metrics
