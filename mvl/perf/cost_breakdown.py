"""Where a multi-objective step's cost goes: `python -m mvl.bench --breakdown --config ...`.

For a config with several objectives (MaskVLM: ITC, ITM, MLM, MIM), times and counts the
FLOPs of the train step with every objective, with each objective alone, and without
each one (its weight set to 0: the model then builds and runs only what the others
need, so the passes an objective shares are not counted twice). Printed per variant:
FLOPs per step (XLA's cost analysis; deterministic), median step time and both as a
multiple of the cheapest single objective's step (for MaskVLM, ITC alone: a CLIP step
at the same towers). "without X" gives X's marginal cost: all - without X.

Timings are ratios within one run on one machine; the FLOP column does not depend on
the machine's load and is the one to read on a shared CPU.
"""

from __future__ import annotations

from mvl import objectives
from mvl.runtime.errors import UserError


def variants(cfg) -> list[tuple[str, dict[str, float]]]:
    """[(label, {objective: weight})]: all, each alone, each left out."""
    weights = objectives.enabled(cfg.objectives)
    if len(weights) < 2:
        raise UserError(
            f"--breakdown splits a step of several objectives; the config enables "
            f"{', '.join(weights) or 'none'}"
        )
    rows = [("all", weights)]
    rows += [(f"only {name}", {name: w}) for name, w in weights.items()]
    rows += [
        (f"without {name}", {k: v for k, v in weights.items() if k != name}) for name in weights
    ]
    return rows


def with_weights(cfg, weights: dict[str, float]):
    variant = cfg.copy_and_resolve_references()
    variant.unlock()
    for name in variant.objectives:
        variant.objectives[name].weight = weights.get(name, 0.0)
    return variant


def run(cfg, workdir: str, steps: int, _flag: bool = True) -> dict:
    """{label: {flops, step_s, ...}}; `steps` 0 compiles and counts only. A variant the
    config cannot run (an objective that needs another) is reported with its reason."""
    from mvl import validate

    results = {}
    for label, weights in variants(cfg):
        variant = with_weights(cfg, weights)
        try:
            validate.validate(variant)
            results[label] = measure(variant, workdir, steps)
        except UserError as e:
            results[label] = {"skipped": str(e).splitlines()[0]}
            print(f"[breakdown] {label}: not runnable ({results[label]['skipped']})", flush=True)
            continue
        timed = f", {results[label]['step_s'] * 1e3:.0f} ms" if steps else ""
        print(
            f"[breakdown] {label}: {results[label]['flops_per_step']:.3g} FLOPs{timed}", flush=True
        )
    add_ratios(results)
    return results


def measure(cfg, workdir: str, steps: int) -> dict:
    from mvl import bench

    if steps:
        result = bench.benchmark(cfg, workdir, steps, matmul_peak=False)
        return {
            "flops_per_step": result["model_flops_per_step"],
            "step_s": result["step_s_median"],
            "compiled_peak_bytes_per_device": result["compiled_peak_bytes_per_device"],
        }
    from mvl.runtime import sharding
    from mvl.train.loop import Trainer

    trainer = Trainer(cfg, workdir)
    batch = trainer.next_batch()
    flops = bench.step_flops_per_device(trainer, batch) * trainer.mesh.devices.size
    with sharding.activate(trainer.mesh, trainer.rules):
        compiled = trainer.train_step.lower(trainer.state, batch).compile()
    return {
        "flops_per_step": flops,
        "compiled_peak_bytes_per_device": bench.compiled_peak_bytes(compiled),
    }


def add_ratios(results: dict):
    """Each variant's FLOPs and time as a multiple of the cheapest single objective's."""
    singles = [
        r for label, r in results.items() if label.startswith("only ") and "flops_per_step" in r
    ]
    if not singles:
        return
    base = min(singles, key=lambda r: r["flops_per_step"])
    for result in results.values():
        if "flops_per_step" in result:
            result["flops_vs_cheapest_single"] = result["flops_per_step"] / base["flops_per_step"]
        if "step_s" in result:
            result["time_vs_cheapest_single"] = result["step_s"] / base["step_s"]


def table(results: dict) -> str:
    lines = [
        "| variant | FLOPs / step | x cheapest single | step ms | x cheapest single |",
        "|---|---|---|---|---|",
    ]
    for label, r in results.items():
        if "skipped" in r:
            lines.append(f"| {label} | not runnable: {r['skipped']} | | | |")
            continue
        timed = (
            f"{r['step_s'] * 1e3:.0f} | {r['time_vs_cheapest_single']:.2f}"
            if "step_s" in r
            else "- | -"
        )
        lines.append(
            f"| {label} | {r['flops_per_step']:.3g} | {r['flops_vs_cheapest_single']:.2f} "
            f"| {timed} |"
        )
    return "\n".join(lines)
