"""Greedy captions from the captioning decoder (objectives.caption): each held-out image
is encoded once, then the decoder runs under its causal mask and the most likely token
is appended at every position until the tokenizer's end token (pads after it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def make_greedy_fn(model, max_len: int):
    """A jitted (params, images [B, H, W, 3], start ids [B]) -> ids [B, max_len]."""
    end, pad = model.special.end, model.special.pad

    def greedy(params, images, start):
        def call(method, *args):
            return model.apply({"params": params}, *args, method=method)

        image_tokens = call("encode_image", images)[:, 1:]
        ids = jnp.full((images.shape[0], max_len), pad, jnp.int32).at[:, 0].set(start)
        done = jnp.zeros((images.shape[0],), bool)

        def step(position, carry):
            ids, done = carry
            logits = call("head", "caption_decoder", ids[:, :-1], image_tokens, True)
            token = jnp.argmax(logits[:, position - 1], -1).astype(jnp.int32)
            token = jnp.where(done, pad, token)
            return ids.at[:, position].set(token), done | (token == end)

        ids, _ = jax.lax.fori_loop(1, max_len, step, (ids, done))
        return ids

    return jax.jit(greedy)
