"""Writes any source as mvl ArrayRecord shards (record format: mvl/data/sources/array_record.py).

  python -m mvl.data.convert --from csv --input /data/pairs.csv --output /data/pairs_ar
  python -m mvl.data.convert --from webdataset --input /data/laion/ --output DIR --workers 8
  python -m mvl.data.convert --from tfds --input coco_captions/2017:train --output DIR \\
      --tfds_data_dir ~/tensorflow_datasets --tfds_caption_key captions/text
  then train with --config.data.source=array_record:DIR

Every sample is checked as training would read it (caption cleaned, image decoded with
mvl/data/decode.py's rules); usable samples keep their original image bytes (arrays,
e.g. from shapes, are stored as PNG), broken ones are left out and counted by kind.

Shard k holds source samples [k * shard_size, (k + 1) * shard_size), so the plan is fixed
by the source and --shard_size. Each shard is written to a temporary file and renamed
when complete, then marked done in OUTPUT/progress/; an interrupted conversion (killed,
a crash, Ctrl-C) resumes where it stopped when rerun with the same arguments, skipping
finished shards. OUTPUT/convert_report.json lists what was written and skipped (counts
by kind and the first skipped samples with their reasons).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import io
import json
import multiprocessing
import os
import signal
from collections import Counter
from typing import Any

import numpy as np

from mvl import cli
from mvl.data import decode, sources
from mvl.data.bad_sample import SKIP_KINDS, kind_of
from mvl.data.sources import array_record
from mvl.errors import UserError

CHECK_SIZE = 32  # images are decoded (and resized this small) only to prove they decode
EXAMPLES_KEPT = 50  # skipped samples named in the report
# For the resume tests: after this many shards are done, raise (as a crash would) or
# SIGKILL this process (nothing cleaned up, as an out-of-memory kill or a preemption).
FAIL_AFTER_ENV = "MVL_CONVERT_FAIL_AFTER_SHARDS"
KILL_AFTER_ENV = "MVL_CONVERT_KILL_AFTER_SHARDS"


@dataclasses.dataclass(frozen=True)
class Plan:
    spec: str  # the source, as pipeline.make_source names it
    split: str
    size: int  # generated sources only: how many examples, rendered at image_size
    image_size: int
    options: sources.SourceOptions
    output: str
    shard_size: int
    num_samples: int

    @property
    def num_shards(self) -> int:
        return max(1, -(-self.num_samples // self.shard_size))

    def shard_path(self, k: int) -> str:
        return os.path.join(
            self.output, f"data-{k:05d}-of-{self.num_shards:05d}{array_record.EXTENSION}"
        )

    def progress_path(self, k: int) -> str:
        return os.path.join(self.output, "progress", f"{k:05d}.json")

    def identity(self) -> dict:
        return {
            "source": self.spec,
            "split": self.split,
            "shard_size": self.shard_size,
            "num_samples": self.num_samples,
        }


def build_source(plan: Plan) -> Any:
    if ":" in plan.spec:  # a file format: no pipeline (and grain, ~5 s) in each worker
        return sources.from_spec(plan.spec, plan.image_size, plan.options)
    from mvl.data import pipeline

    return pipeline.make_source(
        plan.spec,
        plan.split,
        size=plan.size,
        seed=0,
        image_size=plan.image_size,
        options=plan.options,
    )


def stored_record(source: Any, index: int) -> tuple[Any, Any]:
    if hasattr(source, "record"):
        return source.record(index)
    example = source[index]  # a generated source: decoded pixels
    return example["image"], example["caption"]


def encode_png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    decode.image_from_array(np.asarray(pixels)).save(out, format="PNG")
    return out.getvalue()


def convert_sample(source: Any, index: int, where: str) -> bytes:
    """The sample's record; raises (BadSample or anything else) if training could not use it."""
    image, caption = stored_record(source, index)
    text = decode.clean_caption(caption)
    decode.decode_image(image, CHECK_SIZE)
    if isinstance(image, np.ndarray) and image.dtype != object:
        image = encode_png(image)
    return array_record.pack(bytes(image), text, where)


_SOURCES: dict[Plan, Any] = {}  # one source per worker process, built on its first shard


def convert_shard(plan: Plan, k: int) -> dict:
    """Writes shard k atomically and marks it done; returns its report."""
    from array_record.python.array_record_module import ArrayRecordWriter

    if plan not in _SOURCES:
        _SOURCES[plan] = build_source(plan)
    source = _SOURCES[plan]
    describe = getattr(source, "describe", lambda i: f"sample {i}")
    final = plan.shard_path(k)
    tmp = os.path.join(plan.output, f".{os.path.basename(final)}.tmp-{os.getpid()}")
    writer = ArrayRecordWriter(tmp, array_record.WRITER_OPTIONS)
    written, skipped, examples = 0, Counter(), []
    for index in range(k * plan.shard_size, min((k + 1) * plan.shard_size, plan.num_samples)):
        where = describe(index)
        try:
            record = convert_sample(source, index, where)
        except Exception as e:  # noqa: BLE001 -- counted and reported; never stops a conversion
            skipped[kind_of(e)] += 1
            if len(examples) < EXAMPLES_KEPT:
                examples.append(
                    {"where": where, "kind": kind_of(e), "reason": f"{type(e).__name__}: {e}"}
                )
            continue
        writer.write(record)
        written += 1
    writer.close()
    os.replace(tmp, final)
    report = {
        "shard": os.path.basename(final),
        "written": written,
        "skipped": dict(skipped),
        "examples": examples,
    }
    write_json(plan.progress_path(k), report)
    return report


def write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
    os.replace(tmp, path)


def done_shards(plan: Plan) -> dict[int, dict]:
    done = {}
    for k in range(plan.num_shards):
        try:
            with open(plan.progress_path(k)) as f:
                report = json.load(f)
        except (OSError, ValueError):
            continue
        if os.path.exists(plan.shard_path(k)):
            done[k] = report
    return done


def start(plan: Plan) -> None:
    """Creates OUTPUT, refuses one written with other settings, removes a killed run's
    half-written files."""
    os.makedirs(plan.output, exist_ok=True)
    plan_file = os.path.join(plan.output, "convert_plan.json")
    if os.path.exists(plan_file):
        with open(plan_file) as f:
            previous = json.load(f)
        if previous != plan.identity():
            raise UserError(
                f"{plan.output} holds a conversion with other settings ({previous}); rerun "
                "with those, or use a new --output"
            )
    else:
        write_json(plan_file, plan.identity())
    for leftover in glob.glob(os.path.join(plan.output, ".*.tmp-*")):
        os.remove(leftover)


def run(plan: Plan, workers: int) -> dict:
    start(plan)
    done = done_shards(plan)
    todo = [k for k in range(plan.num_shards) if k not in done]
    if done:
        print(f"resuming: {len(done)} of {plan.num_shards} shards already written", flush=True)
    for finished, (k, report) in enumerate(each_shard(plan, todo, workers), start=1):
        done[k] = report
        print(
            f"shard {k + 1}/{plan.num_shards}: {report['written']} written, "
            f"{sum(report['skipped'].values())} skipped",
            flush=True,
        )
        if len(done) < plan.num_shards:
            inject_fault(finished)
    return summarise(plan, done)


def inject_fault(finished: int) -> None:
    if finished == int(os.environ.get(KILL_AFTER_ENV, "0") or 0):
        os.kill(os.getpid(), signal.SIGKILL)
    if finished == int(os.environ.get(FAIL_AFTER_ENV, "0") or 0):
        raise RuntimeError(f"injected failure after {finished} shards ({FAIL_AFTER_ENV})")


def each_shard(plan: Plan, todo: list[int], workers: int):
    if workers <= 1:
        for k in todo:
            yield k, convert_shard(plan, k)
        return
    # spawn, not fork: tfds / tensorflow threads do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(convert_shard, plan, k): k for k in todo}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def summarise(plan: Plan, done: dict[int, dict]) -> dict:
    skipped = Counter()
    examples = []
    for k in sorted(done):
        skipped.update(done[k]["skipped"])
        examples.extend(done[k]["examples"])
    report = {
        **plan.identity(),
        "output": plan.output,
        "shards": plan.num_shards,
        "written": sum(r["written"] for r in done.values()),
        "skipped": sum(skipped.values()),
        "skipped_by_kind": {kind: skipped[kind] for kind in SKIP_KINDS if skipped[kind]},
        "skipped_examples": examples[:EXAMPLES_KEPT],
    }
    write_json(os.path.join(plan.output, "convert_report.json"), report)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mvl.data.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from",
        dest="fmt",
        required=True,
        choices=sources.FORMATS + ("shapes",),
        help="the input's format",
    )
    parser.add_argument(
        "--input",
        required=True,
        help="PATH of the format (file, directory, glob, comma list); tfds: "
        "NAME[:VERSION]:SPLIT; shapes: SPLIT:SIZE",
    )
    parser.add_argument("--output", required=True, help="directory of the ArrayRecord shards")
    parser.add_argument("--shard_size", type=int, default=10_000, help="samples per shard")
    parser.add_argument("--workers", type=int, default=1, help="processes converting shards")
    parser.add_argument("--image_key", default="filepath", help="csv/tsv/jsonl image column")
    parser.add_argument("--caption_key", default="title", help="csv/tsv/jsonl caption column")
    parser.add_argument("--tfds_data_dir", default="")
    parser.add_argument("--tfds_image_key", default="image")
    parser.add_argument("--tfds_caption_key", default="caption")
    parser.add_argument("--index_cache_dir", default="", help="webdataset tar indexes")
    parser.add_argument("--image_size", type=int, default=64, help="shapes: the size rendered")
    args = parser.parse_args(argv)
    if args.shard_size < 1 or args.workers < 1:
        parser.error("--shard_size and --workers must be >= 1")
    return args


def plan_from_args(args: argparse.Namespace) -> Plan:
    options = sources.SourceOptions(
        table_image_key=args.image_key,
        table_keys_named="--image_key / --caption_key",
        table_caption_key=args.caption_key,
        tfds_data_dir=args.tfds_data_dir,
        tfds_image_key=args.tfds_image_key,
        tfds_caption_key=args.tfds_caption_key,
        index_cache_dir=args.index_cache_dir,
    )
    spec, split, size = f"{args.fmt}:{args.input}", "train", 0
    if args.fmt == "shapes":
        split, _, count = args.input.partition(":")
        spec, size = "shapes", int(count or 0)
    output = os.path.abspath(args.output)
    plan = Plan(spec, split, size, args.image_size, options, output, args.shard_size, 0)
    return dataclasses.replace(plan, num_samples=len(build_source(plan)))


def main(argv: list[str] | None = None) -> int:
    return cli.run_main("mvl.data.convert", _convert, argv, also=(ValueError,))


def _convert(argv) -> int:
    args = parse_args(argv)
    plan = plan_from_args(args)
    report = run(plan, args.workers)
    kinds = ", ".join(f"{k}={n}" for k, n in report["skipped_by_kind"].items()) or "none"
    print(
        f"wrote {report['written']} samples in {report['shards']} shards to {plan.output}; "
        f"skipped {report['skipped']} ({kinds}); report: "
        f"{os.path.join(plan.output, 'convert_report.json')}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    cli.exit_with(main())
