"""The config's datasets: the training stream and the held-out rows, one function."""

from __future__ import annotations

import jax

from mvl.data import pipeline
from mvl.runtime import sharding


def split_dataset(
    cfg, tokenizer, split: str, batch_size: int, process_index: int = 0, process_count: int = 1
):
    """(source, grain dataset) of `split`: "train" is shuffled, repeated and augmented
    (broken samples counted against data.max_skipped_in_a_row); a held-out split ("val")
    is read once, in order, its last batch kept whole."""
    training = split == "train"
    source = pipeline.source_for_config(cfg.data, split, cfg.seed)
    if training:
        extra = dict(
            augment=pipeline.augment_lib.Augmentation.from_config(cfg.data),
            image_size=cfg.data.image_size,
            max_skipped_in_a_row=cfg.data.max_skipped_in_a_row,
        )
    else:
        extra = dict(drop_remainder=False)
    dataset = pipeline.make_dataset(
        source,
        tokenizer,
        batch_size=batch_size,
        max_text_len=cfg.data.max_text_len,
        seed=cfg.seed,
        shuffle=training,
        repeat=training,
        process_index=process_index,
        process_count=process_count,
        **extra,
    )
    return source, dataset


def train_dataset(cfg, tokenizer, mesh):
    """This process's rows of every global training batch (on `mesh`)."""
    _, dataset = split_dataset(
        cfg,
        tokenizer,
        "train",
        sharding.batch_size_per_process(cfg.batch_size, mesh),
        jax.process_index(),
        jax.process_count(),
    )
    return dataset
