"""`--table`: every given config x topology, each with the layout `--search` picks, as a
markdown table (the README's paper-scale table) plus the full results as JSON beside it.
`--update` recompiles some cells of an existing table and keeps the others."""

from __future__ import annotations

import dataclasses
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
    if "failed" in result:
        return f"| {result['config']} | {result['topology']} | — | — | failed: {result['failed'][:120]} | | | | | |"
    m = result["mesh"]
    xla = result["xla_flops_per_step"]
    use_xla = xla and not result["xla_counts_loop_bodies_once"]  # see report.py
    step_flops = xla["global"] if use_xla else result["analytic_flops_per_step"]["global"]
    source = "XLA" if use_xla else "mvl"
    extras = [f"{result['microbatches']} microbatches"] if result["microbatches"] > 1 else []
    extras += ["scanned layers"] if result["scan_layers"] else []
    return (
        f"| {result['config']} | {result['topology']} "
        f"| {m['data']}, {m['fsdp']}, {m['tensor']} / {result['remat']}"
        f"{''.join(', ' + e for e in extras)} "
        f"| {report.gib(result['per_chip_bytes']['total'])} / {report.gib(result['hbm_bytes'])} "
        f"| {'yes' if result['fits'] else '**no**'} | {result['global_batch']} "
        f"| {step_flops:.3g} ({source}) | {result['roofline_step_s'] * 1e3:.0f} ms "
        f"({result['roofline_bound']}) | {report.duration(result['schedule_s_at_roofline'])} "
        f"({result['total_steps']} steps) | {result['compile_s']:.0f} s |"
    )


def short_cell(result: dict) -> str:
    """One topology's cell of the summary: fits, memory, what made it fit, roofline."""
    if "failed" in result:
        return "failed"
    settings = [f"remat {result['remat']}"] if result["remat"] != "none" else []
    settings += [f"{result['microbatches']} microbatches"] if result["microbatches"] > 1 else []
    settings += [f"fsdp {result['mesh']['fsdp']}"] if result["mesh"]["fsdp"] > 1 else []
    memory = report.gib(result["per_chip_bytes"]["total"]).replace(" GiB", "")
    return (
        f"{'fits' if result['fits'] else '**does not fit**'} {memory}/"
        f"{report.gib(result['hbm_bytes'])}{''.join(', ' + x for x in settings)}; "
        f"{result['roofline_step_s'] * 1e3:.0f} ms, {report.duration(result['schedule_s_at_roofline'])}"
    )


def summary(cells: list[dict]) -> list[str]:
    """configs x topologies: per-chip memory / HBM, the settings that make it fit, the
    roofline step and the whole schedule at that bound (the README's table)."""
    topologies = list(dict.fromkeys(c["topology"] for c in cells))
    configs = sorted(dict.fromkeys(c["config"] for c in cells))
    found = {(c["config"], c["topology"]): c for c in cells}
    batch = {c["config"]: c.get("global_batch") for c in cells if "global_batch" in c}
    lines = [
        "| config | batch | " + " | ".join(topologies) + " |",
        "|---|---|" + "---|" * len(topologies),
    ]
    for config in configs:
        row = [
            short_cell(found[config, t]) if (config, t) in found else "not compiled"
            for t in topologies
        ]
        name = config.replace("configs/", "").replace(".py:paper", "")
        lines.append(f"| {name} | {batch.get(config, '')} | " + " | ".join(row) + " |")
    return lines


def stamped(command: str) -> str:
    return f"`{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"


@dataclasses.dataclass
class Saved:
    """The table's cells, one per (config, topology), and the commands that made them."""

    commands: list = dataclasses.field(default_factory=list)
    cells: list = dataclasses.field(default_factory=list)

    @classmethod
    def read(cls, markdown_path: str) -> "Saved":
        path = _json_path(markdown_path)
        if not os.path.exists(path):
            return cls()
        with open(path) as f:
            found = json.load(f)
        if isinstance(found, list):  # a table written before --update existed
            return cls([], found)
        return cls(found["commands"], found["cells"])

    def put(self, cell: dict):
        where = (cell["config"], cell["topology"])
        self.cells = [c for c in self.cells if (c["config"], c["topology"]) != where]
        self.cells.append(cell)

    def ordered(self) -> list[dict]:
        topologies = list(dict.fromkeys(c["topology"] for c in self.cells))
        return sorted(self.cells, key=lambda c: (topologies.index(c["topology"]), c["config"]))

    def write(self, markdown_path: str):
        body = [
            "# Paper-scale configs on TPU pods and GPU hosts (compiled ahead of time on a CPU)",
            "",
            "Made by " + "; then ".join(self.commands) + ". Per-chip memory is XLA's for the "
            "compiled step (arguments + outputs - aliased + temporaries + code); step FLOPs "
            "are XLA's on TPU (unless scanned layers make XLA count one iteration) and mvl's "
            "own count otherwise, as each cell says; the roofline step is the lower bound "
            "max(FLOPs / peak bf16, bytes / HBM bandwidth) per chip (mvl/compile/report.py), "
            "so the schedule time is a best case. Each row's mesh, remat and microbatches "
            "are the config's `fit` entry for that hardware (mvl/runtime/fit.py), or a faster "
            "fitting layout `--search` found next to it.",
            "",
            *summary(self.cells),
            "",
            "Each cell: fits, per-chip memory / HBM (GiB), the settings beyond the config's "
            "defaults that make it fit (its `fit` entry), the roofline step, and the paper's "
            "whole schedule at that bound. In full:",
            "",
            HEADER,
            *(row(c) for c in self.ordered()),
            "",
        ]
        os.makedirs(os.path.dirname(markdown_path) or ".", exist_ok=True)
        with open(markdown_path, "w") as f:
            f.write("\n".join(body))
        with open(_json_path(markdown_path), "w") as f:
            json.dump({"commands": self.commands, "cells": self.cells}, f, indent=1)


def _json_path(markdown_path: str) -> str:
    return markdown_path.rsplit(".", 1)[0] + ".json"
