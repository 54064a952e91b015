"""Pair matching (MLIM's downstream task, fine-tuned): do two items show the same thing?

MLIM fine-tunes its pretrained single stream for closely-matching item pairs and uses
modality dropout there, so the matcher copes with items that lack their image or their
text. mvl's reading [?] (the paper gives no head or loss): each item of the batch is
encoded alone by the single stream, its modalities dropped as `mask.modality_dropout`
draws them per item (text only / image only / both), and pooled as the mean of the
output tokens it has (the pooling the pair_matching evaluator uses). The head projects
the pooled item (a dense layer) and scores a pair by a learned scale times the cosine
of the two projections plus a learned bias (SigLIP's sigmoid form, which keeps the
score symmetric and makes the cosine of the projections rank pairs as the head does,
so the evaluator's average precision is the head's). Every pair i != j of the batch is
a binary example, labelled 1 when the two items agree on every label named in
`objectives.pair_match.labels` (shapes: ("shape", "colour"), the main object's, which
is also what the pair_matching evaluator calls a match); the loss is the mean sigmoid
cross-entropy.

Needs a training source with labels (`data.source='shapes'`; the paper's item pairs are
proprietary).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mvl.data.batch_spec import label_names
from mvl.models import layers
from mvl.models.heads import SigmoidScaleBias, l2_normalize
from mvl.objectives import register, rules

HEAD = "pair_match_head"


class PairMatchHead(nn.Module):
    """Pooled item [B, D] -> unit-norm projection [B, D]; `pair_logits` scores pairs."""

    width: int

    @nn.compact
    def __call__(self, items):
        projected = nn.Dense(
            self.width,
            dtype=jnp.float32,
            name="projection",
            kernel_init=layers.dense_init(("embed", None)),
            bias_init=layers.zeros_init((None,)),
        )(items)
        # SigLIP's start: pretrained pooled items are near-parallel (cosine ~1), so
        # 10 x cosine - 10 starts every pair near logit 0.
        log_scale, bias = SigmoidScaleBias(init_scale=10.0, init_bias=-10.0, name="scale_bias")()
        return l2_normalize(projected), log_scale, bias


def pooled_items(text, patches, text_weight, keep_image):
    """Mean of the output tokens each item has: its kept, valid words and, when its
    image is kept, its patches. text [B, L, D], patches [B, N, D], text_weight [B, L]."""
    text_weight = text_weight.astype(jnp.float32)[..., None]
    image_weight = keep_image.astype(jnp.float32)[:, None]
    total = (text * text_weight).sum(1) + patches.sum(1) * image_weight
    count = text_weight.sum(1) + patches.shape[1] * image_weight
    return total / jnp.maximum(count, 1.0)


def pair_labels(classes):
    """[B] class ids -> [B, B] 1.0 where two items share the class."""
    return (classes[:, None] == classes[None, :]).astype(jnp.float32)


def pair_match_loss(embeddings, log_scale, bias, classes):
    """Mean sigmoid cross-entropy over the pairs i != j of the batch."""
    logits = jnp.exp(log_scale) * embeddings @ embeddings.T + bias
    labels = pair_labels(classes)
    off_diagonal = 1.0 - jnp.eye(classes.shape[0])
    per_pair = -(labels * jax.nn.log_sigmoid(logits) + (1 - labels) * jax.nn.log_sigmoid(-logits))
    loss = (per_pair * off_diagonal).sum() / off_diagonal.sum()
    positives = (labels * off_diagonal).sum() / off_diagonal.sum()
    return loss, {"positive_rate": positives, "scale": jnp.exp(log_scale), "bias": bias}


def combined_classes(batch, names):
    """One class id per row: its labels `names` as one mixed-radix number. The dummy
    batch that creates the parameters has no labels (validate has checked that the
    training source provides them), so a missing label counts as class 0 there."""
    rows = batch["text"].shape[0]
    classes = jnp.zeros((rows,), jnp.int32)
    for name in names:
        label = batch.get(name, jnp.zeros((rows,), jnp.int32)).astype(jnp.int32)
        classes = classes * (jnp.max(label) + 1) + label
    return classes


def heads(cfg, model) -> dict:
    return {HEAD: PairMatchHead(cfg.model.single_stream.width)}


def validate(cfg):
    rules.single_stream(cfg)
    offered = label_names(cfg.data)
    chosen = tuple(cfg.objectives.pair_match.labels)
    if not chosen or set(chosen) - set(offered):
        raise rules.ConfigError(
            f"config objectives.pair_match.labels={tuple(cfg.objectives.pair_match.labels)!r}: "
            f"data.source={cfg.data.source!r} provides the labels {offered!r}; pair matching "
            "needs labels that say which items match (data.source='shapes')"
        )


# coupled: every pair of the batch is scored, so under accumulation it runs on the whole
# batch's cached single-stream outputs (mvl/train/grad_cache.py)
@register("pair_match", heads=heads, validate=validate, coupled=True)
def pair_match(forward, cfg):
    text, patches = forward.stream_tokens(masked=False)  # modality dropout applies
    text_weight = forward.text_valid() & forward.masks.keep_text[:, None]
    items = pooled_items(text, patches, text_weight, forward.masks.keep_image)
    embeddings, log_scale, bias = forward.head(HEAD, items)
    classes = combined_classes(forward.batch, tuple(cfg.labels))
    return pair_match_loss(embeddings, log_scale, bias, classes)
