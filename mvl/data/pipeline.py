"""grain input pipelines: data source registry and batched, checkpointable datasets.

Order of operations (each a grain dataset transformation):
  source -> this process's shard -> shuffle (global, reshuffled each epoch)
  -> repeat -> preprocess -> iterator with prefetch threads -> batch
  (-> optional worker processes).
Everything before `to_iter_dataset` is random access, so an iterator's state
is just a position and checkpoints are tiny and exact.

Batches are flat dicts of numpy arrays (no strings, so they can go to jax):
  image  float32 [B, H, W, 3] in [0, 1]
  text   int32   [B, max_text_len]   ([CLS] pieces [EOS] pad)
  shape  int32   [B]
  colour int32   [B]
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import grain
import numpy as np
from absl import flags

from mvl.data.shapes import ShapesSource


class TextEncoder(Protocol):
    def encode(self, texts: str, max_len: int) -> np.ndarray: ...


# name -> factory(split, size, seed, image_size); new sources (tfds, csv, ...) plug in here.
SOURCES: dict[str, Callable[..., Any]] = {
    "shapes": lambda split, size, seed, image_size: ShapesSource(
        split=split, size=size, seed=seed, image_size=image_size
    ),
}


def make_source(name: str, split: str, *, size: int, seed: int, image_size: int) -> Any:
    """A random-access data source (len + getitem -> dict with "image" and "caption")."""
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name](split, size, seed, image_size)


def source_for_config(data_cfg: Any, split: str, seed: int) -> Any:
    """The source a config's `data` section names: `train_size` examples for "train",
    `eval_size` for the held-out splits."""
    size = data_cfg.train_size if split == "train" else data_cfg.eval_size
    return make_source(data_cfg.source, split, size=size, seed=seed, image_size=data_cfg.image_size)


def augment_image(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light brightness/contrast jitter. No flips or crops: captions name
    left/right and positions, which a flip or crop would make false."""
    contrast, brightness = rng.uniform([0.8, -0.08], [1.2, 0.08]).astype(np.float32)
    # Contrast around the overall grey level: hues stay put, so colour words stay true.
    mean = image.mean(dtype=np.float32)
    return np.clip((image - mean) * contrast + (mean + brightness), 0.0, 1.0)


def make_preprocess(
    tokenizer: TextEncoder, max_text_len: int, seed: int, augment: bool
) -> Callable[[tuple[int, dict[str, Any]]], dict[str, np.ndarray]]:
    """Per-example transform of (global position, example).

    The position is the example's place in the global (shuffled, repeated) stream, so
    the augmentation differs between epochs, is reproducible after a restore, and does
    not depend on how many processes share the stream.
    """

    def preprocess(positioned: tuple[int, dict[str, Any]]) -> dict[str, np.ndarray]:
        position, example = positioned
        image = np.asarray(example["image"], np.float32) * np.float32(1 / 255)
        if augment:
            image = augment_image(image, np.random.default_rng([seed, position]))
        return {
            "image": image,
            "text": tokenizer.encode(example["caption"], max_text_len),
            "shape": np.asarray(example["shape"], np.int32),
            "colour": np.asarray(example["colour"], np.int32),
        }

    return preprocess


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
    augment: bool = False,
    drop_remainder: bool = True,
    num_threads: int = 8,
    num_workers: int = 0,
) -> grain.IterDataset:
    """Batched grain dataset of this process's rows of each global batch of `source`.

    The shuffle and repeat are global (the same in every process); each process reads
    its `batch_size` rows of every global batch (ProcessRows), so the global batches do
    not depend on `process_count`.

    `iter(dataset)` gives a checkpointable iterator (get_state / set_state, or
    grain.checkpoint.CheckpointSave / CheckpointRestore with orbax).
    drop_remainder=False keeps a last partial batch (for eval with repeat=False).
    num_threads: prefetch threads per process; rendering mostly holds the GIL,
    so beyond ~2 threads use num_workers > 0 (grain worker processes, each
    batching its own slice: the order depends on num_workers, but stays
    deterministic and checkpointable for a fixed num_workers).
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, process_count={process_count})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    stream = grain.MapDataset.source(source)
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
    ds = ds.map(make_preprocess(tokenizer, max_text_len, seed, augment))
    # Threads overlap rendering/decoding with the consumer; the iterator
    # state stays exact because it records the next index to read.
    read_options = grain.ReadOptions(
        num_threads=num_threads, prefetch_buffer_size=max(2 * batch_size, 16)
    )
    batched = ds.to_iter_dataset(read_options).batch(batch_size, drop_remainder=drop_remainder)
    if num_workers > 0:
        allow_grain_flags_outside_absl_app()
        batched = batched.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return batched
