"""grain input pipelines: data source registry and batched, checkpointable datasets.

Order of operations (each a grain dataset transformation):
  source indices -> shuffle (global, reshuffled each epoch) -> repeat
  -> this process's rows of each global batch -> read + preprocess (mvl/data/preprocess.py;
     crop, flip and jitter of training images: mvl/data/augment.py)
  -> iterator with prefetch threads -> skip broken samples (mvl/data/skip_broken.py) -> batch
  (-> optional worker processes).
Everything before `to_iter_dataset` is random access, so an iterator's state
is just a position and checkpoints are tiny and exact.

A sample that cannot be read or used (the source raises, the image cannot be decoded
or has the wrong shape or non-finite pixels, the caption is empty or not text; see
mvl/data/decode.py for what real images are converted from) never stops a run: it
is logged with its index and reason, left out, and counted in the batch that follows
it (`skipped_before`, and by kind in `skipped_kinds`), which the train step sums into
`data/skipped_samples` and `data/skipped/<kind>`. Only
`data.max_skipped_in_a_row` broken samples in a row (a dataset that is all junk, or a
bug) stop the run, with the last sample's reason.

Batches are flat dicts of numpy arrays (no strings, so they can go to jax):
  image  float32 [B, H, W, 3] in [0, 1]
  text   int32   [B, max_text_len]   ([CLS] pieces [EOS] pad)
  shape  int32   [B]   only from sources with these labels (source.labels: shapes)
  colour int32   [B]
  skipped_before int32 [B]  broken samples left out just before this row
  skipped_kinds  int32 [B, len(SKIP_KINDS)]  the same, by kind (bad_sample.SKIP_KINDS)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grain
from absl import flags

from mvl.data import augment as augment_lib
from mvl.data import sources
from mvl.data.preprocess import (
    TextEncoder,
    make_preprocess,
    make_read_and_preprocess,
    stack_examples,
)
from mvl.data.shapes import ShapesSource
from mvl.data.skip_broken import SkipBroken
from mvl.data.sources.subset import Subset
from mvl.runtime.errors import UserError

# Generated sources: name -> factory(split, size, seed, image_size). Files and datasets
# are named by a spec "FORMAT:PATH" instead (mvl/data/sources/__init__.py).
SOURCES: dict[str, Callable[..., Any]] = {
    "shapes": lambda split, size, seed, image_size: ShapesSource(
        split=split, size=size, seed=seed, image_size=image_size
    ),
}


def make_source(
    name: str,
    split: str,
    *,
    size: int,
    seed: int,
    image_size: int,
    options: sources.SourceOptions = sources.DEFAULT_OPTIONS,
) -> Any:
    """A random-access data source (len + getitem -> dict with "image" and "caption"):
    a generated one by name (`split`, `size` and `seed` apply), or a spec FORMAT:PATH
    (all of its samples; the split of a tfds spec is part of the spec)."""
    if name in SOURCES:
        return SOURCES[name](split, size, seed, image_size)
    if ":" not in name:
        raise ValueError(f"unknown data source {name!r}; known: {sorted(SOURCES)} or FORMAT:PATH")
    return sources.from_spec(name, image_size, options)


def source_for_config(data_cfg: Any, split: str, seed: int) -> Any:
    """The source a config's `data` section names for `split` ("train", or a held-out
    split "val" / "test"; see data.eval_source in mvl/config/data_section.py):
    - a generated source (shapes): `train_size` examples of its train split, or
      `eval_size` of the held-out split;
    - a real source (spec or mixture) with data.eval_source set: all of it for train,
      the first `eval_size` samples of eval_source for the held-out splits;
    - a real source without data.eval_source: its last `eval_size` samples are held
      out (the train split is the rest)."""
    from mvl.config import ConfigError

    held_out = split != "train"
    size = data_cfg.eval_size if held_out else data_cfg.train_size
    # A random resized crop needs the whole image: real training sources then decode
    # at full size (image_size 0) and the crop resizes (mvl/data/augment.py).
    whole = not held_out and augment_lib.Augmentation.from_config(data_cfg).needs_whole_image
    decode_size = 0 if whole else data_cfg.image_size
    # .get: configs saved by runs older than eval_source (shapes only) lack the key.
    eval_source = data_cfg.get("eval_source", "")
    if data_cfg.source in SOURCES and not (held_out and eval_source):
        return make_source(
            data_cfg.source, split, size=size, seed=seed, image_size=data_cfg.image_size
        )
    if held_out and eval_source:
        source = _named_source(data_cfg, "data.eval_source", eval_source, split, seed)
        return Subset(source, 0, min(len(source), data_cfg.eval_size))
    if data_cfg.source == "mixture" and not eval_source:
        raise ConfigError("config data.eval_source must name the held-out pairs of a mixture")
    source = _real_train_source(data_cfg, seed, decode_size)
    if eval_source:
        return source
    keep = len(source) - data_cfg.eval_size
    if keep < 1:
        raise ConfigError(
            f"config data.eval_size={data_cfg.eval_size}: holding out that many of "
            f"{data_cfg.source} ({len(source)} samples) leaves none to train on; lower "
            "it or set data.eval_source"
        )
    return Subset(source, keep, len(source)) if held_out else Subset(source, 0, keep)


def _real_train_source(data_cfg: Any, seed: int, decode_size: int) -> Any:
    if data_cfg.source != "mixture":
        return _named_source(data_cfg, "data.source", data_cfg.source, "train", seed, decode_size)
    from mvl.data.sources.mixture import MixtureSource

    specs = [spec for spec, _ in data_cfg.mixture]
    parts = [
        _named_source(data_cfg, "data.mixture", spec, "train", seed, decode_size) for spec in specs
    ]
    return MixtureSource(parts, [float(w) for _, w in data_cfg.mixture], specs)


def _named_source(
    data_cfg: Any, key: str, spec: str, split: str, seed: int, decode_size: int | None = None
) -> Any:
    from mvl.config import ConfigError

    size = data_cfg.train_size if split == "train" else data_cfg.eval_size
    try:
        return make_source(
            spec,
            split,
            size=size,
            seed=seed,
            image_size=data_cfg.image_size if decode_size is None else decode_size,
            options=sources.SourceOptions.from_config(data_cfg),
        )
    except (ValueError, UserError) as e:
        raise ConfigError(f"config {key}={spec!r}: {e}") from None


class ProcessRows:
    """The global stream positions one process reads, in order.

    Global batch s holds stream positions [s * B, (s + 1) * B) with B = rows_per_process
    * process_count, and process p reads rows [p * b, (p + 1) * b) of it. So the global
    batch, assembled from every process's rows in process order, is the same for any
    number of processes (a 2-process run sees the batches of a 1-process run). A last
    partial global batch is split in the same way, so some processes may get fewer rows.
    """

    def __init__(self, stream_length: int, rows: int, process_index: int, process_count: int):
        self.stream_length, self.rows = stream_length, rows
        self.process_index, self.process_count = process_index, process_count
        global_rows = rows * process_count
        full, remainder = divmod(stream_length, global_rows)
        self._length = full * rows + min(max(remainder - process_index * rows, 0), rows)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> int:
        batch, row = divmod(index, self.rows)
        return batch * self.rows * self.process_count + self.process_index * self.rows + row


def allow_grain_flags_outside_absl_app() -> None:
    """grain's worker processes read absl flags, which raise unless parsed; a
    program not started by absl.app.run gets the flags' defaults instead."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def make_dataset(
    source: Any,
    tokenizer: TextEncoder,
    *,
    batch_size: int,
    max_text_len: int,
    seed: int,
    shuffle: bool,
    repeat: bool,
    process_index: int = 0,
    process_count: int = 1,
    augment: bool | augment_lib.Augmentation = False,
    drop_remainder: bool = True,
    num_threads: int = 8,
    num_workers: int = 0,
    prefetch_buffer_size: int | None = None,
    image_size: int | None = None,
    max_skipped_in_a_row: int = 1000,
) -> grain.IterDataset:
    """Batched grain dataset of this process's rows of each global batch of `source`.

    The shuffle and repeat are global (the same in every process); each process reads
    its `batch_size` rows of every global batch (ProcessRows), so the global batches do
    not depend on `process_count`.

    `iter(dataset)` gives a checkpointable iterator (get_state / set_state, or
    grain.checkpoint.CheckpointSave / CheckpointRestore with orbax).
    drop_remainder=False keeps a last partial batch (for eval with repeat=False).
    image_size: when set, images of another size are broken samples (skipped, counted).
    num_threads: prefetch threads per process; rendering mostly holds the GIL,
    so beyond ~2 threads use num_workers > 0 (grain worker processes, each
    batching its own slice: the order depends on num_workers, but stays
    deterministic and checkpointable for a fixed num_workers).
    prefetch_buffer_size: examples the prefetch threads read ahead (default
    max(2 * batch_size, 16)).
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, process_count={process_count})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # Indices rather than examples, so a broken sample can be named by its index.
    stream = grain.MapDataset.range(len(source))
    if shuffle:
        stream = stream.shuffle(seed=seed)
    if repeat:
        stream = stream.repeat(None)  # a new shuffle each epoch (repeat reseeds by default)
    rows = ProcessRows(len(stream), batch_size, process_index, process_count)
    if len(rows) == 0:
        raise ValueError(
            f"process {process_index} of {process_count} gets no examples "
            f"from {source!r} (len {len(source)}) at {batch_size} rows per process"
        )
    ds = grain.MapDataset.source(rows).map(lambda position: (position, stream[position]))
    labels = tuple(getattr(source, "labels", ()))
    preprocess = make_preprocess(tokenizer, max_text_len, seed, augment, image_size, labels)
    ds = ds.map(make_read_and_preprocess(source, preprocess))
    # Threads overlap rendering/decoding with the consumer; the iterator
    # state stays exact because it records the next index to read.
    if prefetch_buffer_size is None:
        prefetch_buffer_size = max(2 * batch_size, 16)
    read_options = grain.ReadOptions(
        num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size
    )
    examples = SkipBroken(ds.to_iter_dataset(read_options), max_skipped_in_a_row)
    batched = examples.batch(batch_size, drop_remainder=drop_remainder, batch_fn=stack_examples)
    if num_workers > 0:
        allow_grain_flags_outside_absl_app()
        batched = batched.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return batched
