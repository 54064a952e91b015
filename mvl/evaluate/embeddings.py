"""Embeds held-out images and texts with the current params, batch by batch, on the mesh.

Any number of rows on any mesh: each batch is padded to the mesh's batch shards and
the padding dropped from the outputs (mvl/evaluate/padding.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mvl.evaluate import model_parts, padding
from mvl.models.model import text_valid
from mvl.runtime import sharding

POOLS = ("mean", "cls")  # how image features are pooled for probes: patch mean, [CLS]


class Embedder:
    """Jitted image / text embedding functions for a model; compiled once per shape.

    Every process passes the same rows (the whole evaluation set) and gets every row's
    output back, so any metric computed from it is the global one. `batch_size` rows
    go through the mesh at a time (padded to its batch shards); nothing about it or
    the number of rows has to divide anything.
    """

    def __init__(self, model, mesh, batch_size: int, rules=sharding.DEFAULT_RULES):
        if batch_size < 1:
            raise ValueError(f"embedding batch_size must be >= 1, got {batch_size}")
        self.mesh, self.batch_size, self.rules = mesh, batch_size, rules
        self._in = sharding.batch_sharding(mesh)
        # Outputs come back whole on every process (embeddings are small).
        out = sharding.replicated(mesh)

        def image_features(params, images, pool):
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
        self._features = {
            pool: jax.jit(functools.partial(image_features, pool=pool), out_shardings=out)
            for pool in POOLS
        }

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
        pair_head = model_parts.has_pair_match_head(model)

        def item_embedding(params, images, ids, mode):
            """Single stream (MLIM): the mean of the output tokens the item has (through
            the fine-tuned pair-matching head's projection when the model has one: its
            cosine ranks pairs as the head's score does); two towers: the sum of the
            normalised embeddings of the modalities it has."""
            keep_text, keep_image = mode != "image_only", mode != "text_only"
            apply = functools.partial(model.apply, {"params": params})
            if model_parts.single_stream(model):
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
                if pair_head:
                    return apply("pair_match_head", total / count, method="head")[0]
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
        """Match probability of each (image, text) row pair."""
        return self._batched(self._itm, params, (image_tokens, text_tokens, ids))

    def image_features(self, params, images: np.ndarray, pool: str = "mean") -> np.ndarray:
        return self._batched(self._features[pool], params, images)

    def images(self, params, images: np.ndarray) -> np.ndarray:
        return self._batched(self._images, params, images)

    def texts(self, params, ids: np.ndarray) -> np.ndarray:
        return self._batched(self._texts, params, ids)

    def _batched(self, fn, params, inputs) -> np.ndarray:
        """`fn` on chunks of `batch_size` rows, each padded to the mesh's batch shards
        (mvl/evaluate/padding.py); returns the real rows' outputs only, in order.
        `inputs`: one array, or a tuple of arrays with the same rows."""
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        total = len(inputs[0])
        if not total:
            raise ValueError("nothing to embed: no rows")
        # One compiled shape for every chunk (a set smaller than a batch: its own size).
        size = padding.padded_size(min(self.batch_size, total), self.mesh)
        pieces = []
        for start, stop in padding.chunks(total, self.batch_size):
            with sharding.activate(self.mesh, self.rules):
                batch = [
                    padding.place(padding.pad_rows(x[start:stop], size), self._in) for x in inputs
                ]
                result = fn(params, *batch)
            pieces.append(np.asarray(result)[: stop - start])  # the padding is dropped here
        return np.concatenate(pieces)
