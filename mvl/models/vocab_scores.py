"""Per-token scores over a large vocabulary without holding every position's logits.

A decoder's last projection onto a vocabulary of V pieces makes logits [B, L, V]; at
SigLIP 2's scale (Gemma's 256k pieces, 64 tokens, 128 captions per TPU v5e chip) that is
8 GB in float32 before the softmax and its gradient copy, more than the chip holds.
`token_scores` projects `chunk` positions at a time inside a rematerialised loop, so
only one chunk's logits [B, chunk, V] live at once, forward and backward (the backward
recomputes each chunk's logits from the hidden states). chunk=0 projects all positions
at once: the same numbers up to float summation order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def token_scores(hidden, kernel, bias, targets, chunk: int = 0):
    """hidden [B, L, D], kernel [D, V], bias [V], targets [B, L] ids ->
    (-log p(target) [B, L], 1.0 where the argmax is the target [B, L]), float32."""
    if not chunk or chunk >= hidden.shape[1]:
        return _scores(hidden, kernel, bias, targets)
    batch, length, width = hidden.shape
    padded = -(-length // chunk) * chunk
    pad = padded - length
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    # [n, B, chunk, ...]: the loop runs over chunks of positions
    hidden = hidden.reshape(batch, -1, chunk, width).swapaxes(0, 1)
    targets = targets.reshape(batch, -1, chunk).swapaxes(0, 1)
    one_chunk = jax.checkpoint(lambda h, t: _scores(h, kernel, bias, t))
    nll, correct = jax.lax.map(lambda args: one_chunk(*args), (hidden, targets))

    def back(x):
        return x.swapaxes(0, 1).reshape(batch, padded)[:, :length]

    return back(nll), back(correct)


def _scores(hidden, kernel, bias, targets):
    logits = jnp.dot(hidden.astype(jnp.float32), kernel.astype(jnp.float32)) + bias
    return logit_scores(logits, targets)


def logit_scores(logits, targets):
    """logits [..., V], targets [...] ids -> (-log p(target), 1.0 where the argmax is
    the target), float32."""
    logits = logits.astype(jnp.float32)
    picked = jnp.take_along_axis(logits, targets[..., None], -1)[..., 0]
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    return jax.nn.logsumexp(logits, -1) - picked, correct
