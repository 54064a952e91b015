"""The output directory of `python -m mvl.data.convert` (mvl/data/convert.py): the fixed
plan of its shards, which of them are done, and the final report.

Shard k holds source samples [k * shard_size, (k + 1) * shard_size), so the plan is fixed
by the source and --shard_size. A finished shard is marked done in OUTPUT/progress/; a
rerun with the same arguments skips it. OUTPUT/convert_plan.json refuses a rerun with
other settings; OUTPUT/convert_report.json sums up the shards.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from collections import Counter
from typing import Any

from mvl.data import sources
from mvl.data.bad_sample import SKIP_KINDS
from mvl.data.sources import array_record
from mvl.runtime.errors import UserError

EXAMPLES_KEPT = 50  # skipped samples named in the report


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
