"""python -m mvl.bench --config FILE:ARGS [--config.x=y ...] [--steps N] [--json OUT]

Times one config's train_step on this machine's devices and prints: compile time,
median step time, examples/s, model FLOPs per step (XLA's cost analysis of the compiled
step), achieved FLOP/s, MFU against a matmul peak measured here in the same run (and
against the datasheet peak on known TPUs and GPUs), and peak memory. The step runs on
one fixed batch, so data loading is not timed.

--input SPEC instead measures the input pipeline against this machine's bare JPEG decode
limit (mvl/perf/input_pipeline.py; `python -m mvl.bench --input synthetic:2000`).

--breakdown instead splits a multi-objective step (MaskVLM's ITC / ITM / MLM / MIM):
each objective alone and each left out, FLOPs and step time (mvl/perf/cost_breakdown.py).

--sweep KEY=V1,V2,... times the step at each value of one key in one process and prints
ratios to the first (mvl/perf/sweep.py; e.g. FLIP's mask.image.ratio=0,0.5,0.75).

--profile DIR traces the step with jax.profiler into DIR and prints the share of op time
by kind (matmul, fused elementwise, transpose / copy, ...) and the top ops
(mvl/perf/step_profile.py).

--compare open_clip also times open_clip's PyTorch training step for the same CLIP
architecture and batch on this machine (mvl/perf/open_clip_step.py) and prints the ratios.
"""

from __future__ import annotations

import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from mvl import config as config_lib
from mvl.perf.peak_memory import peak_rss_bytes
from mvl.runtime import cli
from mvl.runtime.errors import UserError

# Dense bf16 peak FLOP/s per device, from vendor datasheets.
DATASHEET_PEAKS = {
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5e": 197e12,
    "TPU v5p": 459e12,
    "TPU v6 lite": 918e12,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100": 312e12,
}


def datasheet_peak(device_kind: str) -> float | None:
    return next(
        (peak for name, peak in DATASHEET_PEAKS.items() if device_kind.startswith(name)), None
    )


def measured_matmul_peak(dtype, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul on one device, best of `repeats`: the attainable
    peak for this run (the best, not the median, so a noisy neighbour cannot lower it)."""
    x = jnp.ones((size, size), dtype)
    matmul = jax.jit(lambda a, b: a @ b)
    matmul(x, x).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(x, x).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / float(np.min(times))


def compiled_flops(compiled) -> float:
    """FLOPs of one call of a compiled (per-device, after partitioning) program."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", 0.0))


def compiled_peak_bytes(compiled) -> int | None:
    memory = compiled.memory_analysis()
    if memory is None:
        return None
    return int(
        memory.argument_size_in_bytes
        + memory.output_size_in_bytes
        + memory.temp_size_in_bytes
        - memory.alias_size_in_bytes
    )


def step_flops_per_device(trainer, batch) -> float:
    """Model FLOPs of one train step. XLA's cost analysis counts a loop body once, so
    with gradient accumulation (a lax.scan over microbatches) they come from the same
    step compiled without it: the model's arithmetic in one pass. Exact accumulation
    (mvl/train/grad_cache.py) also runs the coupled objectives' towers once more without
    gradient; that recomputation is left out, as MFU counts model FLOPs."""
    from mvl.runtime import sharding
    from mvl.train.step import make_train_step

    cfg = trainer.cfg
    if cfg.optim.microbatches > 1:
        cfg = cfg.copy_and_resolve_references()
        cfg.unlock()
        cfg.optim.microbatches = 1
    step = jax.jit(
        make_train_step(
            trainer.model,
            cfg,
            trainer.optimizer,
            trainer.schedule,
            trainer.teacher_model,
        ),
        in_shardings=(trainer.state_shardings, sharding.batch_sharding(trainer.mesh)),
    )
    with sharding.activate(trainer.mesh, trainer.rules):
        return compiled_flops(step.lower(trainer.state, batch).compile())


def benchmark(cfg, workdir: str, steps: int, warmup: int = 2, matmul_peak: bool = True) -> dict:
    from mvl.runtime import sharding
    from mvl.train.loop import Trainer

    trainer = Trainer(cfg, workdir)
    batch = trainer.next_batch()
    with sharding.activate(trainer.mesh, trainer.rules):
        start = time.perf_counter()
        compiled = trainer.train_step.lower(trainer.state, batch).compile()
        compile_s = time.perf_counter() - start
        state, times = trainer.state, []
        for i in range(warmup + steps):
            start = time.perf_counter()
            state, metrics = compiled(state, batch)
            jax.block_until_ready((state, metrics))
            if i >= warmup:
                times.append(time.perf_counter() - start)
    step_s = float(np.median(times))
    devices = trainer.mesh.devices.size
    if cfg.optim.microbatches > 1:
        flops_per_device = step_flops_per_device(trainer, batch)
    else:
        flops_per_device = compiled_flops(compiled)
    achieved_per_device = flops_per_device / step_s
    # (a breakdown's many variants skip it: they report ratios of one another)
    peak_measured = measured_matmul_peak(jnp.dtype(cfg.model.dtype)) if matmul_peak else None
    kind = jax.devices()[0].device_kind
    peak_datasheet = datasheet_peak(kind)
    stats = jax.devices()[0].memory_stats() or {}
    return {
        "device_kind": kind,
        "devices": devices,
        "parameters": sum(int(np.prod(p.shape)) for p in jax.tree.leaves(trainer.state.params)),
        "vocab_size": trainer.vocab_size,
        "batch_size": cfg.batch_size,
        "compile_s": compile_s,
        "step_s_median": step_s,
        "step_s_min": float(np.min(times)),
        "examples_per_s": cfg.batch_size / step_s,
        "model_flops_per_step": flops_per_device * devices,
        "achieved_flops_per_s": achieved_per_device * devices,
        "matmul_peak_flops_per_s_per_device": peak_measured,
        "mfu_vs_measured_matmul": achieved_per_device / peak_measured if peak_measured else None,
        "datasheet_peak_flops_per_s_per_device": peak_datasheet,
        "mfu_vs_datasheet": achieved_per_device / peak_datasheet if peak_datasheet else None,
        "compiled_peak_bytes_per_device": compiled_peak_bytes(compiled),
        "device_peak_bytes": stats.get("peak_bytes_in_use"),
        "process_peak_rss_bytes": peak_rss_bytes(),
        "final_loss": float(metrics["loss"]),
        # Scanned layers (model.scan_layers) are a loop too: their FLOPs count one layer.
        "flops_undercounted_by_scan": bool(cfg.model.scan_layers),
    }


def check_comparable(cfg):
    from mvl import objectives

    enabled = set(objectives.enabled(cfg.objectives))
    if enabled != {"itc"}:
        raise UserError(
            f"--compare open_clip times a CLIP step: the config's only objective must be "
            f"itc (it enables {', '.join(sorted(enabled))})"
        )


def compared_with_open_clip(cfg, ours: dict, args) -> dict:
    from mvl.perf import open_clip_step

    theirs = open_clip_step.compare(cfg, ours["vocab_size"], args.steps, args.compare_python)
    compared = {f"open_clip/{k}": v for k, v in theirs.items()}
    compared["examples_per_s_vs_open_clip"] = ours["examples_per_s"] / theirs["examples_per_s"]
    compared["peak_rss_vs_open_clip"] = (
        ours["process_peak_rss_bytes"] / theirs["process_peak_rss_bytes"]
    )
    return compared


def parse_args(argv):
    parser = config_lib.command_line("python -m mvl.bench", __doc__)
    parser.add_argument("--config", required=True, help="configs/X.py[:arg]")
    parser.add_argument(
        "--steps",
        type=int,
        default=10,
        help="timed steps (after 2 warm-up; --breakdown: 0 = FLOPs only)",
    )
    parser.add_argument("--json", help="also write the numbers to this file")
    parser.add_argument("--workdir", help="for the tokenizer; default a temporary directory")
    parser.add_argument(
        "--compare",
        choices=["open_clip"],
        help="also time this implementation's step for the same architecture and batch",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="time and count the step with each objective alone and each left out",
    )
    parser.add_argument("--profile", metavar="DIR", help="trace the step into DIR; op time by kind")
    parser.add_argument("--sweep", help="KEY=V1,V2,...: the step at each value of one key")
    parser.add_argument(
        "--compare_python", help="interpreter with torch + open_clip_torch (default: this one)"
    )
    overrides, args = config_lib.parse_command_line(parser, argv)
    cfg = config_lib.load_config(args.config)
    config_lib.apply_overrides(cfg, overrides)
    return cfg, args


# The measuring modes: --flag -> its module in mvl/perf, whose run(cfg, workdir, steps,
# option) returns a JSON-able result and table(result) its printed form.
MODES = {"breakdown": "cost_breakdown", "profile": "step_profile", "sweep": "sweep"}


def run_mode(flag: str, module_name: str, cfg, workdir: str, args) -> int:
    import importlib

    module = importlib.import_module(f"mvl.perf.{module_name}")
    result = module.run(cfg, workdir, args.steps, getattr(args, flag))
    print(module.table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": args.config, flag: result}, f, indent=1)
    return 0


def main(argv=None) -> int:
    return cli.run_main("mvl.bench", _bench, argv)


def _bench(argv) -> int:
    if any(arg == "--input" or arg.startswith("--input=") for arg in argv):
        from mvl.perf import input_pipeline

        return input_pipeline.run(argv)
    cfg, args = parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="mvl_bench_")
    for flag, module_name in MODES.items():
        if getattr(args, flag):
            return run_mode(flag, module_name, cfg, workdir, args)
    if args.compare:
        check_comparable(cfg)
    result = benchmark(cfg, workdir, args.steps)
    if args.compare:
        result.update(compared_with_open_clip(cfg, result, args))
    result["config"] = args.config
    for key, value in result.items():
        print(f"{key:40s} {value:.4g}" if isinstance(value, float) else f"{key:40s} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    cli.exit_with(main())
