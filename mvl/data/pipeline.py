"""grain input pipelines: data source registry and batched, checkpointable datasets.

Order of operations (each a grain dataset transformation):
  source indices -> shuffle (global, reshuffled each epoch) -> repeat
  -> this process's rows of each global batch -> read + preprocess (crop, flip and
     jitter of training images: mvl/data/augment.py)
  -> iterator with prefetch threads -> skip broken samples -> batch
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

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import grain
import numpy as np
from absl import flags

from mvl.data import augment as augment_lib, decode, sources

# BadSample and Skipped are used here and re-exported (sources and tests raise them).
from mvl.data.bad_sample import SKIP_KINDS, BadSample, Skipped, kind_of
from mvl.data.shapes import ShapesSource
from mvl.data.sources.subset import Subset
from mvl.errors import UserError

log = logging.getLogger(__name__)


class TextEncoder(Protocol):
    def encode(self, texts: str, max_len: int) -> np.ndarray: ...


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


augment_image = augment_lib.jitter  # the photometric jitter (data.augment)


def check_example(example: dict[str, Any], image_size: int | None) -> str:
    """The example's caption as text; raises BadSample naming what is wrong with it."""
    image = np.asarray(example.get("image"))
    expected = (image_size, image_size, 3) if image_size else None
    if image.ndim != 3 or image.shape[-1] != 3 or (expected and image.shape != expected):
        want = expected or "(H, W, 3)"
        raise BadSample(f"image of shape {image.shape}, expected {want}", "bad_image")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise BadSample("image has NaN or infinite pixels", "bad_image")
    return decode.clean_caption(example.get("caption"))


def make_preprocess(
    tokenizer: TextEncoder,
    max_text_len: int,
    seed: int,
    augment: bool | augment_lib.Augmentation,
    image_size: int | None = None,
    labels: tuple[str, ...] = (),
) -> Callable[[tuple[int, dict[str, Any]]], dict[str, np.ndarray]]:
    """Per-example transform of (global position, example).

    The position is the example's place in the global (shuffled, repeated) stream, so
    the augmentation differs between epochs, is reproducible after a restore, and does
    not depend on how many processes share the stream. `augment`: an Augmentation
    (crop, flip, jitter; mvl/data/augment.py), or a bool for the jitter alone.
    `labels`: the integer labels the source provides (shapes: shape, colour).
    """
    if not isinstance(augment, augment_lib.Augmentation):
        augment = augment_lib.Augmentation(jitter=bool(augment))
    if augment.needs_whole_image and not image_size:
        raise ValueError("a random resized crop needs image_size (the size it resizes to)")
    geometric = augment.crop != "centre" or augment.flip

    def preprocess(positioned: tuple[int, dict[str, Any]]) -> dict[str, np.ndarray]:
        position, example = positioned
        # A random resized crop takes any image size; the crop makes it image_size.
        caption = check_example(example, None if augment.needs_whole_image else image_size)
        image = example["image"]
        if geometric:
            rng = augment_lib.geometry_rng(seed, position)
            image = augment_lib.geometry(np.asarray(image), augment, image_size, rng)
        image = np.asarray(image, np.float32) * np.float32(1 / 255)
        if augment.jitter:
            image = augment_image(image, np.random.default_rng([seed, position]))
        return {
            "image": image,
            "text": tokenizer.encode(caption, max_text_len),
            **{label: np.asarray(example[label], np.int32) for label in labels},
        }

    return preprocess


def make_read_and_preprocess(source: Any, preprocess: Callable) -> Callable:
    """(global position, source index) -> preprocessed example, or Skipped when the
    source cannot read it or `preprocess` rejects it (any exception: a sample must not
    stop a run; the consecutive-skip limit catches a pipeline that rejects everything)."""
    describe = getattr(source, "describe", lambda index: f"sample {index} of {source!r:.80}")

    def read_and_preprocess(positioned: tuple[int, int]):
        position, index = positioned
        try:
            return preprocess((position, source[index]))
        except Exception as e:  # noqa: BLE001 -- reported and counted, see above
            return Skipped(describe(index), f"{type(e).__name__}: {e}", kind_of(e))

    return read_and_preprocess


class _SkipBrokenIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, max_in_a_row: int, counter: SkipLog):
        super().__init__(parent)
        self.max_in_a_row, self.counter = max_in_a_row, counter

    def __next__(self) -> dict[str, np.ndarray]:
        skipped, kinds = 0, np.zeros(len(SKIP_KINDS), np.int32)
        while True:
            element = next(self._parent)
            if not isinstance(element, Skipped):
                return {**element, "skipped_before": np.int32(skipped), "skipped_kinds": kinds}
            skipped += 1
            kinds[SKIP_KINDS.index(element.kind)] += 1
            self.counter.record(element)
            if skipped >= self.max_in_a_row:
                raise UserError(
                    f"{skipped} samples in a row could not be used "
                    f"(data.max_skipped_in_a_row={self.max_in_a_row}); the last, "
                    f"{element.where}: {element.reason}"
                )

    # Between two elements nothing is pending, so the parent's position is the state.
    def get_state(self):
        return self._parent.get_state()

    def set_state(self, state):
        self._parent.set_state(state)


class SkipBroken(grain.IterDataset):
    """Drops Skipped stand-ins; each kept example records how many it follows."""

    def __init__(self, parent: grain.IterDataset, max_in_a_row: int):
        super().__init__(parent)
        self.max_in_a_row = max_in_a_row

    def __iter__(self) -> _SkipBrokenIterator:
        return _SkipBrokenIterator(self._parent.__iter__(), self.max_in_a_row, SKIP_LOG)


class SkipLog:
    """Logs skipped samples: the first `first` of them, then every `every`-th."""

    def __init__(self, first: int = 20, every: int = 1000):
        self.first, self.every, self.count = first, every, 0
        self._lock = threading.Lock()

    def record(self, skipped: Skipped):
        with self._lock:
            self.count += 1
            count = self.count
        if count <= self.first or count % self.every == 0:
            log.warning(
                "skipped %s: %s (%d skipped in this process)", skipped.where, skipped.reason, count
            )


SKIP_LOG = SkipLog()


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
    read_options = grain.ReadOptions(
        num_threads=num_threads, prefetch_buffer_size=max(2 * batch_size, 16)
    )
    examples = SkipBroken(ds.to_iter_dataset(read_options), max_skipped_in_a_row)
    batched = examples.batch(batch_size, drop_remainder=drop_remainder)
    if num_workers > 0:
        allow_grain_flags_outside_absl_app()
        batched = batched.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return batched
