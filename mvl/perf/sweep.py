"""One config's step at several values of one key, in one process:
`python -m mvl.bench --config configs/flip.py:paper --sweep mask.image.ratio=0,0.5,0.75`.

Each value gets its own compiled step, timed after the same warm-up; printed are FLOPs,
median step time, examples/s and each as a multiple of the first value's (e.g. FLIP's
speed-up from dropping patches). The runs share the process and follow each other, so
their ratios see the same machine; on a shared CPU, repeat and read the spread.
"""

from __future__ import annotations

from mvl import config as config_lib
from mvl.runtime.errors import UserError


def parse(sweep: str) -> tuple[str, list[str]]:
    key, sep, values = sweep.partition("=")
    if not sep or not key or not values:
        raise UserError(
            f"--sweep {sweep!r}: write KEY=VALUE,VALUE,... (e.g. mask.image.ratio=0,0.5)"
        )
    return key, values.split(",")


def run(cfg, workdir: str, steps: int, sweep: str) -> dict:
    from mvl import bench

    key, values = parse(sweep)
    results = {}
    for value in values:
        variant = cfg.copy_and_resolve_references()
        config_lib.apply_overrides(variant, {key: value})
        result = bench.benchmark(variant, workdir, steps, matmul_peak=False)
        results[value] = {
            "flops_per_step": result["model_flops_per_step"],
            "step_s": result["step_s_median"],
            "examples_per_s": result["examples_per_s"],
            "compiled_peak_bytes_per_device": result["compiled_peak_bytes_per_device"],
        }
        print(f"[sweep] {key}={value}: {result['step_s_median'] * 1e3:.0f} ms", flush=True)
    first = results[values[0]]
    for result in results.values():
        result["speedup"] = first["step_s"] / result["step_s"]
        result["flops_vs_first"] = result["flops_per_step"] / first["flops_per_step"]
    return {"key": key, "results": results}


def table(swept: dict) -> str:
    lines = [
        f"| {swept['key']} | FLOPs / step | x first | step ms | speed-up vs first |",
        "|---|---|---|---|---|",
    ]
    for value, r in swept["results"].items():
        lines.append(
            f"| {value} | {r['flops_per_step']:.3g} | {r['flops_vs_first']:.2f} "
            f"| {r['step_s'] * 1e3:.0f} | {r['speedup']:.2f} |"
        )
    return "\n".join(lines)
