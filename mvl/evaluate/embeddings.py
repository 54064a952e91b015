"""Embeds held-out images and texts with the current params, batch by batch, on the mesh."""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from mvl import sharding


class Embedder:
    """Jitted image / text embedding functions for a model; compiled once per shape.

    Each process passes its own rows; the result is every process's rows, in process
    order, so any metric computed from it is the global one.
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

    def texts(self, params, ids: np.ndarray) -> np.ndarray:
        return self._batched(self._texts, params, ids)

    def _batched(self, fn, params, inputs: np.ndarray) -> np.ndarray:
        """Pads the last batch to the full size so there is a single compiled shape."""
        outputs = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start : start + self.batch_size]
            pad = self.batch_size - len(chunk)
            if pad:  # identical padding rows on every process; dropped in _total's count
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            with sharding.activate(self.mesh):
                result = fn(params, sharding.global_batch({"x": chunk}, self.mesh)["x"])
            outputs.append(result)
        gathered = [np.asarray(multihost_utils.process_allgather(o, tiled=True)) for o in outputs]
        return np.concatenate(gathered)[: self._total(len(inputs))]

    def _total(self, local_count: int) -> int:
        if jax.process_count() > 1 and local_count % self.batch_size:
            raise ValueError(
                f"eval rows per process ({local_count}) must be a multiple of "
                f"eval.batch_size ({self.batch_size}) on several processes"
            )
        return local_count * jax.process_count()
