"""Temp memory of the compiled train step at several `optim.microbatches` (no run).

    python -m mvl.perf.accumulation_memory --config configs/clip.py:demo \
        --microbatches 1,2,4 [--set model.image.depth=6 ...]

compiles the step ahead of time for this machine's devices (mvl/compile/aot.py: nothing
is allocated, no data is read) and prints XLA's memory analysis per k: temps (the
activations and workspaces of one step), arguments, and temps relative to k = 1. With
exact accumulation (mvl/train/grad_cache.py) the towers' activations are held for one
slice, so the temps of an encoder-dominated step fall about k-fold; what stays is the
full-batch part (cached tower outputs, their cotangents, the coupled heads).
"""

from __future__ import annotations

import argparse
import json

import jax

from mvl import config as config_lib
from mvl.compile.aot import compile_step

MIB = 2**20


def temps_by_microbatches(cfg, counts, devices=None) -> dict[int, dict]:
    """{k: the compiled step's per-device memory (aot.py's fields, bytes)}."""
    devices = jax.devices() if devices is None else devices
    result = {}
    for count in counts:
        run_cfg = cfg.copy_and_resolve_references()
        config_lib.apply_overrides(run_cfg, {"optim.microbatches": str(count)})
        result[count] = compile_step(run_cfg, devices)["memory"]
    return result


def report(memory: dict[int, dict]) -> str:
    first = memory[min(memory)]["temp"]
    lines = ["microbatches  temp MiB  argument MiB  temp / temp(k=1)"]
    for count, fields in sorted(memory.items()):
        lines.append(
            f"{count:>12}  {fields['temp'] / MIB:>8.1f}  {fields['argument'] / MIB:>12.1f}"
            f"  {fields['temp'] / first:>16.3f}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/clip.py:demo", help="configs/X.py[:arg]")
    parser.add_argument("--microbatches", default="1,2,4", help="comma-separated k values")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE override")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    cfg = config_lib.load_config(args.config)
    overrides = dict(item.split("=", 1) for item in args.set)
    config_lib.apply_overrides(cfg, overrides)
    counts = [int(k) for k in args.microbatches.split(",")]
    memory = temps_by_microbatches(cfg, counts)
    print(
        f"{args.config} batch {cfg.batch_size} on {len(jax.devices())} device(s) "
        f"({jax.devices()[0].platform})"
    )
    print(report(memory))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({str(k): v for k, v in memory.items()}, f, indent=1)


if __name__ == "__main__":
    main()
