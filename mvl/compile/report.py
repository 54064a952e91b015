"""One compile's findings as a JSON-able dict (the keys `--json` writes) and as text.

Roofline: a step cannot be faster than its FLOPs at the chip's peak nor than its bytes
moved at the chip's HBM bandwidth, per chip: roofline_step_s = max(FLOPs / peak,
bytes / bandwidth). FLOPs are XLA's where it reports them (TPU), else mvl's count
(flops.py); bytes are XLA's `bytes accessed` (TPU), else the arguments read and
outputs written once (a lower bound: GPU's compiler reports no cost). XLA counts the
body of a loop once (`model.scan_layers`, `optim.microbatches` > 1 make loops): then
the FLOPs are mvl's and the bytes a lower bound (`xla_counts_loop_bodies_once`). The MFU ceiling
is the model's matmul FLOPs (mvl's count) over what the chip could do in that time: what the
best possible step would reach; remat, padding or a memory-bound step lower it.
"""

from __future__ import annotations

from mvl.compile.chips import CHIPS, GIB, Chip
from mvl.compile.topology import Target


def build(cfg, config_name: str, target: Target, devices, found: dict, decode_rate: float) -> dict:
    chip: Chip = CHIPS[target.chip]
    n = len(devices)
    memory = found["memory"]
    analytic = found["analytic_flops"]
    xla = found["xla_cost"]
    # Loops (scanned layers, microbatches) make XLA's figures count one iteration: then
    # mvl's FLOPs (which multiply by the trip count) and a lower bound on bytes are used.
    loops = found["has_loops"]
    flops_per_chip = max(xla["flops"], analytic["per_device"]) if xla else analytic["per_device"]
    lower_bound_bytes = memory["argument"] + memory["output"]
    if xla and xla["bytes_accessed"]:
        bytes_per_chip = (
            max(xla["bytes_accessed"], lower_bound_bytes) if loops else xla["bytes_accessed"]
        )
        bytes_source = "xla (loop bodies once: a lower bound)" if loops else "xla"
    else:
        bytes_per_chip = lower_bound_bytes
        bytes_source = "arguments + outputs (lower bound)"
    model_flops = analytic["matmul_global"] / n  # what MFU counts: the model's matmuls
    compute_s = flops_per_chip / chip.peak_bf16_flops
    memory_s = bytes_per_chip / chip.hbm_bytes_per_s
    step_s = max(compute_s, memory_s)
    processes = len({getattr(d, "process_index", 0) for d in devices})
    per_host_batch = cfg.batch_size // processes
    input_rate = per_host_batch / step_s if step_s else 0.0
    return {
        "config": config_name,
        "topology": target.name,
        "platform": target.platform,
        "num_devices": n,
        "mesh": found["mesh"],
        "remat": cfg.model.remat,
        "microbatches": cfg.optim.microbatches,
        "scan_layers": cfg.model.scan_layers,
        "dtype": cfg.model.dtype,
        "global_batch": cfg.batch_size,
        "per_chip_bytes": memory,
        "hbm_bytes": chip.hbm_bytes,
        "usable_bytes": chip.usable_bytes,
        "fits": memory["total"] <= chip.usable_bytes,
        "xla_flops_per_step": None
        if not xla
        else {"per_device": xla["flops"], "global": xla["flops"] * n},
        "analytic_flops_per_step": analytic,
        "xla_counts_loop_bodies_once": loops,
        "bytes_accessed_per_device": bytes_per_chip,
        "bytes_accessed_source": bytes_source,
        "roofline_step_s": step_s,
        "roofline_bound": "compute" if compute_s >= memory_s else "memory",
        "mfu_ceiling": model_flops / (step_s * chip.peak_bf16_flops) if step_s else None,
        "total_steps": cfg.total_steps,
        "schedule_s_at_roofline": step_s * cfg.total_steps,
        "chip": chip.as_dict(),
        "chip_table": {name: c.as_dict() for name, c in CHIPS.items()},
        "collectives": found["collectives"],
        "processes": processes,
        "per_host_batch": per_host_batch,
        "input_images_per_s_per_host": input_rate,
        "decode_images_per_s_per_core": decode_rate,
        "host_cores_for_decode": input_rate / decode_rate if decode_rate else None,
        "lower_s": found["lower_s"],
        "compile_s": found["compile_s"],
    }


def not_fitting_hint(result: dict) -> str:
    mesh = result["mesh"]
    return (
        f"{result['config']} on {result['topology']}: {gib(result['per_chip_bytes']['total'])} "
        f"per chip > {gib(result['usable_bytes'])} usable of {result['chip']['name']}'s HBM; "
        f"shard more (--config.mesh.fsdp, now {mesh['fsdp']}), recompute "
        f"(--config.model.remat=dots or full, now {result['remat']}), or split the batch "
        f"(--config.optim.microbatches, now {result['microbatches']}); try --search"
    )


def gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s"


def text(result: dict) -> str:
    m, a, x = (
        result["per_chip_bytes"],
        result["analytic_flops_per_step"],
        result["xla_flops_per_step"],
    )
    lines = [
        f"{result['config']} on {result['topology']} ({result['num_devices']} devices, "
        f"{result['processes']} hosts), mesh {result['mesh']}, remat {result['remat']}, "
        f"microbatches {result['microbatches']}",
        f"  per chip: arguments {gib(m['argument'])}, outputs {gib(m['output'])} "
        f"(aliased {gib(m['alias'])}), temporaries {gib(m['temp'])}, code {gib(m['code'])}",
        f"  total {gib(m['total'])} of {gib(result['hbm_bytes'])} HBM "
        f"({gib(result['usable_bytes'])} usable): {'fits' if result['fits'] else 'DOES NOT FIT'}",
        f"  FLOPs per step: mvl {a['global']:.3e} global, {a['per_device']:.3e} per chip; "
        + (f"XLA {x['per_device']:.3e} per chip" if x else "XLA: none on GPU"),
        f"  roofline step {result['roofline_step_s'] * 1e3:.1f} ms "
        f"({result['roofline_bound']}-bound), "
        f"MFU ceiling {result['mfu_ceiling']:.0%}, {result['total_steps']} steps: "
        f"{duration(result['schedule_s_at_roofline'])}",
        "  collectives: "
        + ", ".join(
            f"{kind} {c['count']} x ({gib(c['bytes'])})"
            for kind, c in result["collectives"].items()
            if c["count"]
        ),
        f"  per host: batch {result['per_host_batch']}, needs "
        f"{result['input_images_per_s_per_host']:.0f} images/s; one core here decodes "
        f"{result['decode_images_per_s_per_core']:.0f}/s "
        f"(~{result['host_cores_for_decode']:.1f} cores)",
        f"  compile {result['compile_s']:.1f} s (lowering {result['lower_s']:.1f} s)",
    ]
    return "\n".join(lines)
