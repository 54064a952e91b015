"""ITM for a single-stream encoder (MLIM's "ITM instead of RECON" ablation).

A two-tower model draws hard negatives from its embeddings (mvl/objectives/itm.py); a
single stream has no embeddings to draw from, so, as in single-stream pretraining
(UNITER, MLIM's ablation [?]), each example's image is replaced by another example's
with probability 1/2 and the head on the stream's [CLS] says whether the pair matches.
The pass sees both modalities unmasked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.models.heads import ItmHead
from mvl.objectives import register, rules
from mvl.objectives.itm import itm_loss


def swap_images(rng, images):
    """(images with about half replaced by the next example's, labels 1 = still matched)."""
    n = images.shape[0]
    swapped = jax.random.bernoulli(rng, 0.5, (n,))
    partner = jnp.roll(images, 1, axis=0)
    paired = jnp.where(swapped[:, None, None, None], partner, images)
    return paired, (~swapped).astype(jnp.int32)


@register(
    "stream_itm",
    heads=lambda cfg, model: {"stream_itm_head": ItmHead()},
    validate=rules.single_stream,
    coupled=True,  # a pair takes its image from another example of the batch
)
def stream_itm(forward, cfg):
    images, labels = swap_images(forward.rng("stream_itm"), forward.batch["image"])
    text_tokens, _ = forward.call("encode_stream", images, forward.ids())
    # Match / no-match of the (text, image) pair, from the stream's [CLS].
    return itm_loss(forward.head("stream_itm_head", text_tokens[:, 0]), labels)
