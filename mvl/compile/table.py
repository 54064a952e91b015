"""`--table`: every given config x topology, each with the layout `--search` picks, as a
markdown table (the README's paper-scale table) plus the full results as JSON."""

from __future__ import annotations

import json
import os
import time

from mvl.compile import report

HEADER = (
    "| config | topology | mesh (data, fsdp, tensor) / remat | per-chip memory / HBM | fits "
    "| global batch | step FLOPs (global) | roofline step | full schedule at roofline "
    "| compile |\n|---|---|---|---|---|---|---|---|---|---|"
)


def row(result: dict) -> str:
    m = result["mesh"]
    xla = result["xla_flops_per_step"]
    use_xla = xla and not result["xla_counts_loop_bodies_once"]  # see report.py
    step_flops = xla["global"] if use_xla else result["analytic_flops_per_step"]["global"]
    source = "XLA" if use_xla else "mvl"
    return (
        f"| {result['config']} | {result['topology']} "
        f"| {m['data']}, {m['fsdp']}, {m['tensor']} / {result['remat']}"
        f"{', scanned layers' if result['scan_layers'] else ''} "
        f"| {report.gib(result['per_chip_bytes']['total'])} / {report.gib(result['hbm_bytes'])} "
        f"| {'yes' if result['fits'] else '**no**'} | {result['global_batch']} "
        f"| {step_flops:.3g} ({source}) | {result['roofline_step_s'] * 1e3:.0f} ms "
        f"({result['roofline_bound']}) | {report.duration(result['schedule_s_at_roofline'])} "
        f"({result['total_steps']} steps) | {result['compile_s']:.0f} s |"
    )


def failed_row(config: str, topology: str, error: str) -> str:
    return f"| {config} | {topology} | — | — | failed: {error[:120]} | | | | | |"


def write(path: str, rows: list[str], results: list[dict], command: str):
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = [
        "# Paper-scale configs on TPU pods and GPU hosts (compiled ahead of time on a CPU)",
        "",
        f"Made by `{command}` ({stamp}). Per-chip memory is XLA's for the compiled step "
        "(arguments + outputs - aliased + temporaries + code); step FLOPs are XLA's on TPU "
        "(unless scanned layers make XLA count one iteration) and mvl's own count otherwise, "
        "as each cell says; the roofline step is the lower bound "
        "max(FLOPs / peak bf16, bytes / HBM bandwidth) per chip (mvl/compile/report.py), "
        "so the schedule time is a best case. Each row's mesh and remat policy are the "
        "fastest fitting ones `--search` compiled.",
        "",
        HEADER,
        *rows,
        "",
    ]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(body))
    with open(path.rsplit(".", 1)[0] + ".json", "w") as f:
        json.dump(results, f, indent=1)
