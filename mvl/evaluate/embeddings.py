"""Embeds held-out images and texts with the current params, batch by batch, on the mesh."""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from mvl import sharding
from mvl.evaluate import gather


class Embedder:
    """Jitted image / text embedding functions for a model; compiled once per shape.

    Each process passes its own rows; the result is every process's rows in global
    order (mvl/evaluate/gather.py), so any metric computed from it is the global one.
    """

    def __init__(self, model, mesh, batch_size: int):
        self.mesh, self.batch_size = mesh, batch_size
        out = sharding.batch_sharding(mesh)

        def embed_images(params, images):
            tokens = model.apply({"params": params}, images, method="encode_image")
            return model.apply({"params": params}, tokens, method="embed_image")

        def embed_texts(params, ids):
            tokens = model.apply({"params": params}, ids, method="encode_text")
            return model.apply({"params": params}, tokens, method="embed_text")

        self._images = jax.jit(embed_images, out_shardings=out)
        self._texts = jax.jit(embed_texts, out_shardings=out)

    def images(self, params, images: np.ndarray) -> np.ndarray:
        return self._batched(self._images, params, images)

    def texts(self, params, ids: np.ndarray, same_on_every_process: bool = False) -> np.ndarray:
        """`same_on_every_process`: every process passes the same ids (e.g. zero-shot
        prompts); the result is one copy of their embeddings, not one per process."""
        return self._batched(self._texts, params, ids, same_on_every_process)

    def _batched(self, fn, params, inputs: np.ndarray, one_copy: bool = False) -> np.ndarray:
        """Embeds chunks of `batch_size` rows per process (the last padded, so a single
        compiled shape) and returns every process's real rows in global order."""
        counts = gather.row_counts(len(inputs))
        pieces = []
        for start in range(0, int(counts.max()), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            if not len(chunk):  # this process has no rows left: embed a stand-in, drop it
                chunk = inputs[:1]
            pad = self.batch_size - len(chunk)
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            with sharding.activate(self.mesh):
                result = fn(params, sharding.global_batch({"x": chunk}, self.mesh)["x"])
            every = np.asarray(multihost_utils.process_allgather(result, tiled=True))
            every = every.reshape((len(counts), self.batch_size) + every.shape[1:])
            rows = gather.chunk_rows(counts, start, self.batch_size)
            for process in [0] if one_copy else range(len(counts)):
                pieces.append(every[process, : rows[process]])
        return np.concatenate(pieces)
