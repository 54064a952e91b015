"""Writes any source as mvl ArrayRecord shards (record format: mvl/data/sources/array_record.py).

  python -m mvl.data.convert --from csv --input /data/pairs.csv --output /data/pairs_ar
  python -m mvl.data.convert --from webdataset --input /data/laion/ --output DIR --workers 8
  python -m mvl.data.convert --from tfds --input coco_captions/2017:train --output DIR \\
      --tfds_data_dir ~/tensorflow_datasets --tfds_caption_key captions/text
  then train with --config.data.source=array_record:DIR

Every sample is checked as training would read it (caption cleaned, image decoded with
mvl/data/decode.py's rules); usable samples keep their original image bytes (arrays,
e.g. from shapes, are stored as PNG), broken ones are left out and counted by kind
(one shard: mvl/data/convert_shard.py).

Shard k holds source samples [k * shard_size, (k + 1) * shard_size), so the plan is fixed
by the source and --shard_size. Each shard is written to a temporary file and renamed
when complete, then marked done in OUTPUT/progress/; an interrupted conversion (killed,
a crash, Ctrl-C) resumes where it stopped when rerun with the same arguments, skipping
finished shards. OUTPUT/convert_report.json lists what was written and skipped (counts
by kind and the first skipped samples with their reasons; the output directory:
mvl/data/convert_output.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import multiprocessing
import os
import signal

from mvl.data import sources
from mvl.data.convert_output import Plan, done_shards, start, summarise
from mvl.data.convert_shard import build_source, convert_shard
from mvl.runtime import cli

# For the resume tests: after this many shards are done, raise (as a crash would) or
# SIGKILL this process (nothing cleaned up, as an out-of-memory kill or a preemption).
FAIL_AFTER_ENV = "MVL_CONVERT_FAIL_AFTER_SHARDS"
KILL_AFTER_ENV = "MVL_CONVERT_KILL_AFTER_SHARDS"


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
