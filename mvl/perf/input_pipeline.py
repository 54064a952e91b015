"""python -m mvl.bench --input SPEC [--config FILE:ARG] [--workers N ...] [--json OUT]

How close mvl's input pipeline comes to this machine's bare decode limit, in one run:
  (a) the decode limit: a plain PIL loop (JPEG decode, shorter side resized, centre crop;
      mvl/data/decode_limit.py) in one process per core, images/s in all and per core;
  (b) mvl's grain pipeline, the trainer's own (mvl/train/datasets.py: source, shuffle,
      decode, the config's crop / flip / jitter at its image size, tokenizer, batching),
      images/s with the trainer's default settings and with the best of a small sweep
      over worker processes, prefetch threads and the prefetch buffer;
  (c) in one thread, ms per image of the bare decode and of mvl's per-example work
      (read, decode, augmentation, tokenizer), alternated: per-image overhead, apart
      from parallelism;
and the ratios pipeline / limit. Everything is measured --rounds times, round-robin (the
limit before every round and after the last, every setting once a round; medians), so a
machine whose load drifts biases neither side.

SPEC: `synthetic:N` writes N COCO-sized JPEGs (500 x 375, ~60 kB) with captions as
img2dataset-style webdataset shards in a temporary directory; `webdataset:PATH` reads
existing shards. The tokenizer is trained on the shards' captions (a small one: its
speed, not its quality, is what the pipeline pays for).
"""

from __future__ import annotations

import gc
import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from mvl import config as config_lib
from mvl.data import decode_limit
from mvl.runtime.errors import UserError

DEFAULT_CONFIG = "configs/clip.py:paper"  # 224 px, random resized crop: a real recipe
SHARD_SAMPLES = 1000  # img2dataset's default shard size is 10000; smaller suits a bench
_WORDS = ("red", "small", "old", "wooden", "busy", "quiet", "striped", "bright")
_THINGS = ("dog", "train", "kitchen", "bicycle", "street", "pizza", "boat", "giraffe")


def synthetic_caption(rng: np.random.Generator) -> str:
    adjective, thing, place = rng.choice(_WORDS), rng.choice(_THINGS), rng.choice(_THINGS)
    return f"a {adjective} {thing} next to a {place} in the afternoon"


def write_synthetic_shards(directory: str, count: int, seed: int = 0) -> str:
    """`count` photo-like JPEGs with captions as webdataset shards in `directory`, the
    members img2dataset writes per key (KEY.jpg, KEY.txt, KEY.json); returns the spec."""
    rng = np.random.default_rng(seed)
    for first in range(0, count, SHARD_SAMPLES):
        shard = os.path.join(directory, f"{first // SHARD_SAMPLES:05d}.tar")
        with tarfile.open(shard, "w") as tar:
            for index in range(first, min(first + SHARD_SAMPLES, count)):
                caption = synthetic_caption(rng)
                members = {
                    "jpg": decode_limit.photo_like_jpeg(seed * 1_000_003 + index),
                    "txt": caption.encode(),
                    "json": json.dumps({"caption": caption, "key": f"{index:09d}"}).encode(),
                }
                for extension, data in members.items():
                    info = tarfile.TarInfo(f"{index:09d}.{extension}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return f"webdataset:{directory}"


def dataset_spec(spec: str, scratch: str) -> str:
    """The webdataset spec to read: `spec` itself, or synthetic shards written for it."""
    kind, _, value = spec.partition(":")
    if kind == "synthetic":
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"--input {spec!r}: synthetic:N needs a positive count N")
        return write_synthetic_shards(scratch, int(value))
    if kind == "webdataset" and value:
        return spec
    raise UserError(f"--input {spec!r} is neither synthetic:N nor webdataset:PATH")


def bench_config(config_spec: str, overrides: dict, data_spec: str, batch_size: int):
    """The config with its data pointed at the shards: all of them train (eval_source is
    the same shards, so none are held out) at the config's image size and augmentation."""
    cfg = config_lib.load_config(config_spec)
    config_lib.apply_overrides(cfg, overrides)
    cfg.data.source = data_spec
    cfg.data.eval_source = data_spec
    cfg.batch_size = batch_size
    return cfg


def bench_tokenizer(source, directory: str):
    from mvl.data import tokenizer

    captions = tokenizer.captions_from_source(source, 2000, spread=True)
    return tokenizer.train_tokenizer(captions, os.path.join(directory, "bench.model"))


def sweep_settings(cores: int, batch_size: int, workers: Sequence[int] | None) -> list:
    """What to measure: the trainer's default (None), worker processes x prefetch
    threads, and a small and a large prefetch buffer with no workers and with the
    most workers."""
    counts = sorted(set(workers)) if workers else sorted({0, max(cores - 1, 1), cores, 2 * cores})
    settings: list = [None]
    for num_workers in counts:
        threads = (cores, 2 * cores) if num_workers == 0 else (1, 2)
        settings += [{"num_workers": num_workers, "num_threads": t} for t in threads]
    for base in (trainer_default_settings(), {"num_workers": counts[-1], "num_threads": 1}):
        settings += [{**base, "prefetch_buffer_size": b} for b in (batch_size, 8 * batch_size)]
    return settings


def images_per_second(dataset, batch_size: int, seconds: float, warmup_batches: int = 2) -> float:
    """Batches/s x batch size of iterating `dataset`, after warm-up batches that cover
    worker start-up and filling the prefetch buffers."""
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    batches, start = 0, time.perf_counter()
    while True:
        next(iterator)
        batches += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    del iterator  # stops grain's worker processes and threads before the next run
    gc.collect()
    return batches * batch_size / elapsed


def measure_pipeline(cfg, tokenizer, source, seconds: float, settings: dict | None) -> float:
    """Images/s of the trainer's dataset (settings None: exactly split_dataset's, the
    trainer's defaults) or of the same make_dataset call with `settings` changed. Training
    batches only: the trainer's default held-out batches are decoded the same way."""
    from mvl.data import pipeline
    from mvl.train import datasets

    if settings is None:
        _, dataset = datasets.split_dataset(cfg, tokenizer, "train", cfg.batch_size)
    else:
        dataset = pipeline.make_dataset(
            source,
            tokenizer,
            batch_size=cfg.batch_size,
            max_text_len=cfg.data.max_text_len,
            seed=cfg.seed,
            shuffle=True,
            repeat=True,
            augment=pipeline.augment_lib.Augmentation.from_config(cfg.data),
            image_size=cfg.data.image_size,
            max_skipped_in_a_row=cfg.data.max_skipped_in_a_row,
            **settings,
        )
    return images_per_second(dataset, cfg.batch_size, seconds)


def some_jpegs(source, count: int = 64) -> list[bytes]:
    return [source.record(i)[0] for i in range(min(len(source), count))]


def mean_jpeg_bytes(source) -> float:
    return float(np.mean([len(jpeg) for jpeg in some_jpegs(source)]))


def decode_limit_rates(source, image_size: int, processes: int, seconds: float) -> list[float]:
    jpegs = some_jpegs(source)
    return decode_limit.all_core_rates(jpegs, image_size, processes, seconds)


def one_thread_ms_per_image(cfg, tokenizer, source, rounds: int) -> dict:
    """ms per image in this thread of the bare decode and of mvl's per-example work
    (read, decode, the config's augmentation, tokenize), alternated on the same JPEGs
    and taking medians: a ratio that a busy machine's load cannot skew, as both sides
    run in turn on one core. What is left of the gap in the all-core numbers is
    parallelism (threads, workers, batching), not per-image work."""
    from mvl.data import pipeline, preprocess

    augment = pipeline.augment_lib.Augmentation.from_config(cfg.data)
    work = preprocess.make_read_and_preprocess(
        source,
        preprocess.make_preprocess(
            tokenizer, cfg.data.max_text_len, cfg.seed, augment, cfg.data.image_size
        ),
    )
    jpegs, size = some_jpegs(source), cfg.data.image_size

    def ms(step) -> float:
        start = time.perf_counter()
        for index in range(len(jpegs)):
            step(index)
        return (time.perf_counter() - start) / len(jpegs) * 1e3

    bare, mvl = [], []
    for _ in range(max(rounds, 3)):
        bare.append(ms(lambda index: decode_limit.bare_decode(jpegs[index], size)))
        mvl.append(ms(lambda index: work((index, index))))
    bare_ms, mvl_ms = float(np.median(bare)), float(np.median(mvl))
    return {"bare_decode_ms": bare_ms, "mvl_example_ms": mvl_ms, "bare_vs_mvl": bare_ms / mvl_ms}


def trainer_default_settings() -> dict:
    """make_dataset's own defaults, which the trainer uses (it passes none of these)."""
    import inspect

    from mvl.data import pipeline

    parameters = inspect.signature(pipeline.make_dataset).parameters
    return {name: parameters[name].default for name in ("num_workers", "num_threads")}


def benchmark(
    cfg, processes: int, seconds: float, workers: Sequence[int] | None, rounds: int, scratch: str
):
    """The sweep, measured `rounds` times round-robin (so a neighbour's load that comes
    and goes hits every setting alike; each setting's rate is its median), with the
    decode limit measured before every round and after the last (its median)."""
    from mvl.data import pipeline

    source = pipeline.source_for_config(cfg.data, "train", cfg.seed)
    tokenizer = bench_tokenizer(source, scratch)
    size = cfg.data.image_size
    settings = sweep_settings(processes, cfg.batch_size, workers)
    limits, rates = [], [[] for _ in settings]
    for _ in range(rounds):
        limits.append(sum(decode_limit_rates(source, size, processes, seconds)))
        for where, setting in enumerate(settings):
            rates[where].append(measure_pipeline(cfg, tokenizer, source, seconds, setting))
    limits.append(sum(decode_limit_rates(source, size, processes, seconds)))
    limit = float(np.median(limits))
    one_thread = one_thread_ms_per_image(cfg, tokenizer, source, rounds)
    sweep = [
        {"settings": setting or "trainer default", "images_per_s": float(np.median(r)), "rounds": r}
        for setting, r in zip(settings, rates)
    ]
    default, best = sweep[0]["images_per_s"], max(sweep, key=lambda row: row["images_per_s"])
    return {
        "samples": len(source),
        "mean_jpeg_bytes": mean_jpeg_bytes(source),
        "image_size": size,
        "crop": cfg.data.crop,
        "batch_size": cfg.batch_size,
        "decode_processes": processes,
        "decode_limit_images_per_s": limit,
        "decode_limit_images_per_s_per_core": limit / processes,
        "decode_limit_measurements": limits,
        "pipeline_default_images_per_s": default,
        "pipeline_default_vs_limit": default / limit,
        "pipeline_best_images_per_s": best["images_per_s"],
        "pipeline_best_vs_limit": best["images_per_s"] / limit,
        "pipeline_best_settings": best["settings"],
        "one_thread_per_image": one_thread,
        "sweep": sweep,
    }


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.bench --input", __doc__)
    parser.add_argument("--input", required=True, help="synthetic:N or webdataset:PATH")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="its image size and augmentation")
    parser.add_argument("--batch_size", type=int, default=64, help="rows per batch")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts to sweep")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="decode-limit processes (default: one per core)",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin repeats")
    parser.add_argument("--json", help="also write the numbers to this file")
    return config_lib.parse_command_line(parser, argv)


def run(argv) -> int:
    overrides, args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mvl_bench_input_") as scratch:
        spec = dataset_spec(args.input, scratch)
        cfg = bench_config(args.config, overrides, spec, args.batch_size)
        result = benchmark(cfg, args.processes, args.seconds, args.workers, args.rounds, scratch)
    result.update(input=args.input, config=args.config)
    for key, value in result.items():
        if key != "sweep":
            print(f"{key:40s} {value:.4g}" if isinstance(value, float) else f"{key:40s} {value}")
    for row in result["sweep"]:
        print(f"  {row['images_per_s']:8.1f} images/s  {row['settings']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0
