"""What every evaluator of a run shares: the model, the mesh, the held-out rows (read
once), the label tasks their source offers, and one Embedder, whose image and text
embeddings are computed once per evaluation however many evaluators read them.

Every process reads the whole held-out set, in the order of the data stream, so every
evaluation sees the same rows in the same order whatever the process and device
counts; the towers run on the mesh `eval.batch_size` rows at a time, each batch padded
to the mesh's batch shards and the padding dropped (mvl/evaluate/padding.py), so no
size has to divide anything.
"""

from __future__ import annotations

import numpy as np

from mvl.evaluate import labels
from mvl.evaluate.embeddings import Embedder
from mvl.runtime import sharding
from mvl.runtime.errors import UserError
from mvl.train import datasets


def load_eval_set(cfg, tokenizer, process_index: int = 0, process_count: int = 1):
    """(source, rows): the first `data.eval_size` val examples as numpy arrays, in stream
    order (with process_count > 1: this process's share, as a training stream splits)."""
    source, dataset = datasets.split_dataset(
        cfg, tokenizer, "val", cfg.eval.batch_size, process_index, process_count
    )
    batches = list(dataset)
    if not batches:
        raise UserError(
            f"no usable held-out pairs in {source!r} (every sample was skipped; see the "
            "warnings above): check data.eval_source / data.eval_size"
        )
    return source, {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


class EvalContext:
    def __init__(self, model, cfg, tokenizer, mesh, teacher_model=None):
        self.model, self.cfg, self.tokenizer, self.mesh = model, cfg, tokenizer, mesh
        self.teacher_model = teacher_model
        self.rules = sharding.rules(cfg.mesh)
        self._held_out = self._label_tasks = None  # read when an evaluator first needs them
        self.embedder = Embedder(model, mesh, cfg.eval.batch_size, self.rules)
        self._remembered: dict = {}

    # The held-out set is read on first use: a run declaring only benchmark evaluators
    # (which read their own data) is evaluated without the training data on disk.
    @property
    def source(self):
        return self._held_out_set()[0]

    @property
    def data(self) -> dict:
        return self._held_out_set()[1]

    @property
    def label_tasks(self) -> dict:
        if self._label_tasks is None:
            self._label_tasks = labels.label_tasks(self.source, self.data)
        return self._label_tasks

    def _held_out_set(self):
        if self._held_out is None:  # all of it, on every process
            self._held_out = load_eval_set(self.cfg, self.tokenizer)
        return self._held_out

    def begin(self):
        """A new evaluation: forget the last one's embeddings."""
        self._remembered = {}

    def image_embeddings(self, params) -> np.ndarray:
        return self._once("images", lambda: self.embedder.images(params, self.data["image"]))

    def text_embeddings(self, params) -> np.ndarray:
        return self._once("texts", lambda: self.embedder.texts(params, self.data["text"]))

    def embed_prompts(self, params, texts) -> np.ndarray:
        ids = self.tokenizer.encode(list(texts), self.cfg.data.max_text_len)
        return self.embedder.texts(params, ids)

    def _once(self, key, compute):
        if key not in self._remembered:
            self._remembered[key] = compute()
        return self._remembered[key]
