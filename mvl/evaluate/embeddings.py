"""Embeds held-out images and texts with the current params, batch by batch, on the mesh."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from mvl import sharding
from mvl.evaluate import gather
from mvl.models.model import text_valid


class Embedder:
    """Jitted image / text embedding functions for a model; compiled once per shape.

    Each process passes its own rows; the result is every process's rows in global
    order (mvl/evaluate/gather.py), so any metric computed from it is the global one.
    """

    def __init__(self, model, mesh, batch_size: int, pool: str = "mean"):
        self.mesh, self.batch_size = mesh, batch_size
        out = sharding.batch_sharding(mesh)

        def image_features(params, images):
            """The image tower's output pooled ([CLS] or the mean of the patches): what
            a linear probe or kNN reads, for any method with an image tower."""
            tokens = model.apply({"params": params}, images, method="encode_image")
            return tokens[:, 0] if pool == "cls" else tokens[:, 1:].mean(1)

        def embed_images(params, images):
            tokens = model.apply({"params": params}, images, method="encode_image")
            return model.apply({"params": params}, tokens, method="embed_image")

        def embed_texts(params, ids):
            tokens = model.apply({"params": params}, ids, method="encode_text")
            return model.apply({"params": params}, tokens, ids, method="embed_text")

        self._images = jax.jit(embed_images, out_shardings=out)
        self._texts = jax.jit(embed_texts, out_shardings=out)
        self._features = jax.jit(image_features, out_shardings=out)

        def itm_match_probability(params, image_tokens, text_tokens, ids):
            apply = functools.partial(model.apply, {"params": params})
            fused_image = apply(image_tokens, text_tokens, ids, method="fuse_image")
            fused_text = apply(text_tokens, ids, image_tokens, method="fuse_text")
            logits = apply(fused_image, fused_text, method="itm_logits")
            return jax.nn.softmax(logits, axis=-1)[:, 1]

        self._itm = jax.jit(itm_match_probability, out_shardings=out)

        def encoder(method):
            return lambda params, x: model.apply({"params": params}, x, method=method)

        self._image_tokens = jax.jit(encoder("encode_image"), out_shardings=out)
        self._text_tokens = jax.jit(encoder("encode_text"), out_shardings=out)
        self._items, self._out = {}, out

        def item_embedding(params, images, ids, mode):
            """Single stream (MLIM): the mean of the output tokens the item has; two
            towers: the sum of the normalised embeddings of the modalities it has."""
            keep_text, keep_image = mode != "image_only", mode != "text_only"
            apply = functools.partial(model.apply, {"params": params})
            if "single_stream" in model.components:
                batch = ids.shape[0]
                text, patches = apply(
                    images,
                    ids,
                    text_keep=jnp.full((batch,), keep_text),
                    image_keep=jnp.full((batch,), keep_image),
                    method="encode_stream",
                )
                text_weight = text_valid(ids, model.special) & keep_text
                text_weight = text_weight.astype(text.dtype)[..., None]
                total = (text * text_weight).sum(1) + patches.sum(1) * keep_image
                count = text_weight.sum(1) + patches.shape[1] * keep_image
                return total / count
            image, text = embed_images(params, images), embed_texts(params, ids)
            return image * keep_image + text * keep_text

        self._item_embedding = item_embedding

    def items(self, params, images: np.ndarray, ids: np.ndarray, mode: str) -> np.ndarray:
        """One embedding per (image, text) item under a modality-dropout `mode`."""
        if mode not in self._items:
            self._items[mode] = jax.jit(
                functools.partial(self._item_embedding, mode=mode), out_shardings=self._out
            )
        return self._batched(self._items[mode], params, (images, ids))

    def image_tokens(self, params, images: np.ndarray) -> np.ndarray:
        return self._batched(self._image_tokens, params, images)

    def text_tokens(self, params, ids: np.ndarray) -> np.ndarray:
        return self._batched(self._text_tokens, params, ids)

    def itm_scores(self, params, image_tokens, text_tokens, ids) -> np.ndarray:
        """Match probability of each (image, text) row pair; every process passes the
        same pairs (from gathered tokens) and gets one copy of the scores."""
        return self._batched(self._itm, params, (image_tokens, text_tokens, ids), True)

    def image_features(self, params, images: np.ndarray) -> np.ndarray:
        return self._batched(self._features, params, images)

    def images(self, params, images: np.ndarray) -> np.ndarray:
        return self._batched(self._images, params, images)

    def texts(self, params, ids: np.ndarray, same_on_every_process: bool = False) -> np.ndarray:
        """`same_on_every_process`: every process passes the same ids (e.g. zero-shot
        prompts); the result is one copy of their embeddings, not one per process."""
        return self._batched(self._texts, params, ids, same_on_every_process)

    def _batched(self, fn, params, inputs, one_copy: bool = False) -> np.ndarray:
        """Runs `fn` on chunks of `batch_size` rows per process (the last padded, so a
        single compiled shape) and returns every process's real rows in global order.
        `inputs`: one array, or a tuple of arrays with the same rows."""
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        counts = gather.row_counts(len(inputs[0]))
        pieces = []
        for start in range(0, int(counts.max()), self.batch_size):
            chunks = [self._padded_chunk(x, start) for x in inputs]
            with sharding.activate(self.mesh):
                batch = sharding.global_batch(dict(enumerate(chunks)), self.mesh)
                result = fn(params, *(batch[i] for i in range(len(chunks))))
            every = np.asarray(multihost_utils.process_allgather(result, tiled=True))
            every = every.reshape((len(counts), self.batch_size) + every.shape[1:])
            rows = gather.chunk_rows(counts, start, self.batch_size)
            for process in [0] if one_copy else range(len(counts)):
                pieces.append(every[process, : rows[process]])
        return np.concatenate(pieces)

    def _padded_chunk(self, inputs: np.ndarray, start: int) -> np.ndarray:
        chunk = inputs[start : start + self.batch_size]
        if not len(chunk):  # this process has no rows left: embed a stand-in, drop it
            chunk = inputs[:1]
        pad = self.batch_size - len(chunk)
        return np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
