"""Zero-shot classification on a benchmark on disk (ImageNet val, CIFAR, ...): an
image folder root/<class>/<image> or a prepared tfds dataset, scored top-1 / top-5 with
prompt ensembling (mvl/evaluate/benchmark_zeroshot.py).

    config.evals.<name> = dict(type="zeroshot_benchmark", source="image_folder",
                               path="/data/imagenet/val", class_names="imagenet1k", ...)

Options: source "image_folder" (path = its root) or "tfds" (tfds_name, split, path =
the tfds data_dir); class_names: a shipped set (imagenet1k, cifar10, cifar100) or a
.json / .txt file, "" = the source's own label names (folder names, tfds names);
templates: a template set of the class-name set ("openai_80", "openai_7", "clip_18"),
"<set>:<name>", or a file, "" = the set's first one ("a photo of a {}." without a set);
limit: score an evenly spaced subset of this many images (0 = all); chunk_images: images
decoded and embedded at a time; logits_file: also write every image's logits (open_clip's
scale: 100 x cosine similarity to each class ensemble) and labels to this .npz, to compare
with another implementation image by image. `imagenet_zeroshot` is the same with ImageNet-1k's
defaults: tfds imagenet2012 validation, CLIP's names and 80 templates.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from mvl.evaluate import benchmark_zeroshot, model_parts
from mvl.evaluate.benchmarks import class_names as names_lib
from mvl.evaluate.benchmarks import streaming
from mvl.evaluate.benchmarks.classification import SOURCES, read_classification
from mvl.evaluate.evaluator import Evaluator, check_positive, fail
from mvl.evaluate.registry import register


@register("zeroshot_benchmark")
class ZeroShotBenchmark(Evaluator):
    defaults: ClassVar[dict] = dict(
        source="image_folder",
        path="",
        tfds_name="",
        split="validation",
        class_names="",
        templates="",
        limit=0,
        chunk_images=512,
        logits_file="",
    )

    @classmethod
    def validate(cls, where, section):
        if section["source"] not in SOURCES:
            fail(where, "source", section["source"], f"must be one of {', '.join(SOURCES)}")
        check_positive(where, section, "chunk_images")
        if not isinstance(section["limit"], int) or section["limit"] < 0:
            fail(where, "limit", section["limit"], "must be an int >= 0 (0 = every image)")

    def __init__(self, name, section, context):
        super().__init__(name, section, context)
        if not model_parts.embeds(context.model):
            self.refuse("the model embeds no images and texts (no itc or siglip objective)")
        if section.source == "image_folder" and not section.path:
            self.refuse("set path to the image folder's root (root/<class>/<image>)")
        if section.source == "tfds" and not section.tfds_name:
            self.refuse("set tfds_name (e.g. imagenet2012) and path (its data_dir)")
        self._data = None  # read on the first run

    def run(self, state):
        image_emb, class_emb, labels = self.embeddings(state.params)
        accuracy = benchmark_zeroshot.top_k_accuracy(image_emb, class_emb, labels)
        if self.section.logits_file:
            np.savez(
                self.section.logits_file, logits=100.0 * image_emb @ class_emb.T, labels=labels
            )
        metrics = {f"{self.name}/{k}": v for k, v in accuracy.items()}
        metrics[f"{self.name}/chance"] = 1.0 / len(class_emb)
        metrics[f"{self.name}/images"] = float(len(labels))
        return metrics

    def embeddings(self, params):
        """(normalised image embeddings, class ensembles, labels) of the benchmark."""
        data, class_names, templates = self._benchmark()
        ctx = self.context
        class_emb = benchmark_zeroshot.ensembled_class_embeddings(
            lambda texts: ctx.embed_prompts(params, texts), class_names, templates
        )
        image_emb = streaming.embed_all(
            lambda pixels: ctx.embedder.images(params, pixels),
            data.images,
            ctx.cfg.data.image_size,
            self.section.chunk_images,
            self.where,
        )
        image_emb = benchmark_zeroshot.normalise(image_emb.astype(np.float32))
        return image_emb, class_emb, data.labels

    def _benchmark(self):
        if self._data is None:
            section = self.section
            data = read_classification(
                section.source, section.path, section.tfds_name, section.split, section.limit
            )
            class_names = self._class_names(data)
            templates = self._templates()
            self._data = (data, class_names, templates)
        return self._data

    def _class_names(self, data):
        key = f"config {self.where}.class_names"
        if not self.section.class_names:
            if not data.folder_names:
                self.refuse("the source has no label names: set class_names")
            return list(data.folder_names)
        names = names_lib.class_names(self.section.class_names, key)
        needed = len(data.folder_names) or int(data.labels.max()) + 1
        if len(names) != needed:
            self.refuse(
                f"class_names {self.section.class_names!r} has {len(names)} names "
                f"but the source has {needed} classes"
            )
        return names

    def _templates(self):
        spec, shipped = self.section.templates, self.section.class_names
        is_set = shipped in names_lib.shipped_sets()
        if not spec:
            if not is_set:
                return ["a photo of a {}."]
            spec = f"{shipped}:{names_lib.first_template_set(shipped, self.where)}"
        key = f"config {self.where}.templates"
        return names_lib.templates(spec, key, shipped if is_set else "")


@register("imagenet_zeroshot")
class ImageNetZeroShot(ZeroShotBenchmark):
    defaults: ClassVar[dict] = dict(
        ZeroShotBenchmark.defaults,
        source="tfds",
        tfds_name="imagenet2012",
        class_names="imagenet1k",
        templates="openai_80",
    )
