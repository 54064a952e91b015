"""A linear probe on a benchmark on disk, as CLIP's paper runs it: frozen image features
of a train split and a test split (image folders or tfds splits), L2-regularised
logistic regression with the strength swept on a validation part of the train split,
refit on all of it, scored top-1 on the test split (mvl/evaluate/logistic_regression.py).

    config.evals.<name> = dict(type="linear_probe_benchmark", source="image_folder",
                               train_path="/data/cifar10/train", path="/data/cifar10/test")

Options: source "image_folder" (train_path / path = the train / test roots) or "tfds"
(tfds_name, train_split / split, path = data_dir); features: "embedding" (the image
embedding the contrastive loss sees), "cls" or "mean" (the image tower's output pooled:
any method with an image tower, MAE included); l2_grid: the swept strengths;
validation_fraction; max_steps (L-BFGS iterations); limit / train_limit: evenly spaced
subsets (0 = all); chunk_images: images decoded and embedded at a time; knn_k: also
score weighted kNN on the same features (k neighbours, cosine similarity, votes
exp(sim / knn_temperature), mvl/evaluate/knn.py; the DINO protocol's 20 and 0.07),
reported as <name>/knn_top1; 0 = no kNN.
"""

from __future__ import annotations

from typing import ClassVar

from mvl.evaluate import knn, logistic_regression, model_parts
from mvl.evaluate.benchmarks import streaming
from mvl.evaluate.benchmarks.classification import SOURCES, read_classification
from mvl.evaluate.embeddings import POOLS
from mvl.evaluate.evaluator import Evaluator, check_positive, fail
from mvl.evaluate.registry import register

FEATURES = ("embedding", *POOLS)


@register("linear_probe_benchmark")
class LinearProbeBenchmark(Evaluator):
    defaults: ClassVar[dict] = dict(
        source="image_folder",
        train_path="",
        path="",
        tfds_name="",
        train_split="train",
        split="validation",
        features="embedding",
        l2_grid=logistic_regression.L2_GRID,
        validation_fraction=0.2,
        max_steps=1000,
        limit=0,
        train_limit=0,
        chunk_images=512,
        knn_k=20,
        knn_temperature=0.07,
    )

    @classmethod
    def validate(cls, where, section):
        if section["source"] not in SOURCES:
            fail(where, "source", section["source"], f"must be one of {', '.join(SOURCES)}")
        if section["features"] not in FEATURES:
            fail(where, "features", section["features"], f"must be one of {', '.join(FEATURES)}")
        check_positive(where, section, "chunk_images", "max_steps")
        if not section["knn_temperature"] > 0:
            fail(where, "knn_temperature", section["knn_temperature"], "must be > 0")
        if not isinstance(section["knn_k"], int) or section["knn_k"] < 0:
            fail(where, "knn_k", section["knn_k"], "must be an int >= 0 (0 = no kNN)")
        if not 0 < section["validation_fraction"] < 1:
            fail(where, "validation_fraction", section["validation_fraction"], "must be in (0, 1)")
        if not section["l2_grid"] or min(section["l2_grid"]) < 0:
            fail(where, "l2_grid", section["l2_grid"], "must be strengths >= 0")
        for key in ("limit", "train_limit"):
            if not isinstance(section[key], int) or section[key] < 0:
                fail(where, key, section[key], "must be an int >= 0 (0 = every image)")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if section.features == "embedding" and not model_parts.embeds(context.model):
            self.refuse("the model embeds no images: use features='cls' or 'mean'")
        if not model_parts.has_image_tower(context.model):
            self.refuse("the model has no image tower to probe")
        if section.source == "image_folder" and not (section.path and section.train_path):
            self.refuse("set train_path and path: the train and test image folders")
        if section.source == "tfds" and not section.tfds_name:
            self.refuse("set tfds_name (e.g. cifar10) and path (its data_dir)")
        self._splits = None

    def run(self, state):
        train, test = self._read()
        train_x, test_x = (self._features(state.params, data) for data in (train, test))
        classes = max(len(train.folder_names), int(train.labels.max()) + 1)
        section = self.section
        result = logistic_regression.swept_linear_probe(
            train_x, train.labels, test_x, test.labels, classes,
            l2_grid=tuple(section.l2_grid),
            validation_fraction=section.validation_fraction,
            max_steps=section.max_steps,
        )  # fmt: skip
        metrics = {f"{self.name}/{k}": v for k, v in result.items()}
        metrics[f"{self.name}/chance"] = 1.0 / classes
        if section.knn_k:
            metrics[f"{self.name}/knn_top1"] = knn.knn_accuracy(
                train_x, train.labels, test_x, test.labels, classes,
                k=section.knn_k, temperature=section.knn_temperature,
            )  # fmt: skip
        return metrics

    def _read(self):
        if self._splits is None:
            s = self.section
            train_root = s.train_path if s.source == "image_folder" else s.path
            train = read_classification(s.source, train_root, s.tfds_name, s.train_split,
                                        s.train_limit)  # fmt: skip
            test = read_classification(s.source, s.path, s.tfds_name, s.split, s.limit)
            if train.folder_names != test.folder_names:
                self.refuse(
                    "the train and test sources have different classes "
                    f"({len(train.folder_names)} and {len(test.folder_names)})"
                )
            self._splits = (train, test)
        return self._splits

    def _features(self, params, data):
        embedder, features = self.context.embedder, self.section.features
        if features == "embedding":
            embed = lambda pixels: embedder.images(params, pixels)
        else:
            embed = lambda pixels: embedder.image_features(params, pixels, features)
        size = self.context.cfg.data.image_size
        return streaming.embed_all(embed, data.images, size, self.section.chunk_images, self.where)
