"""Lower and compile mvl's real train step for a target's abstract devices.

The model, state shardings and jitted step come from mvl/train/program.py, as in a
run (mvl.main); the state is `jax.eval_shape`d and the batch is
mvl/data/batch_spec.py's, so nothing is allocated and no data is read.
"""

from __future__ import annotations

import time

from mvl import validate
from mvl.compile import collectives, flops
from mvl.data import batch_spec
from mvl.runtime import sharding
from mvl.runtime.errors import UserError
from mvl.train import run_tokenizer, teacher_architecture
from mvl.train.program import build_program


class DoesNotFit(UserError):
    """The step cannot fit in the chip's memory: the compiler refused it (TPU), or its
    compiled size is over HBM. One line with what to change; exit status 3."""

    exit_code = 3
    label = "does not fit"


def _out_of_memory(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


def compile_step(cfg, devices) -> dict:
    """What XLA made of one train step of `cfg` on `devices` (see report.py's keys)."""
    cfg = teacher_architecture.resolve(cfg)
    validate.validate(cfg, len(devices), platform=devices[0].platform)
    mesh = sharding.make_mesh(cfg.mesh, devices)
    start = time.perf_counter()
    # No tokenizer here: the config's tokenizer kind gives its special ids (CLIP BPE's
    # pad is a real token, which changes how valid positions are computed).
    program = build_program(cfg, mesh, cfg.data.vocab_size, run_tokenizer.special_ids(cfg))
    batch = batch_spec.batch_spec(cfg, sharding=sharding.batch_sharding(mesh))
    with sharding.activate(mesh, sharding.rules(cfg.mesh)):
        traced = program.train_step.trace(program.abstract_state, batch)
        lowered = traced.lower()
    lowered_at = time.perf_counter()
    try:
        compiled = lowered.compile()
    except Exception as e:  # noqa: BLE001 -- only XLA's out-of-memory refusal is ours
        if not _out_of_memory(e):
            raise
        first = next((line for line in str(e).splitlines() if line.strip()), "")
        raise DoesNotFit(f"XLA could not fit the step in HBM: {first[:300]}") from None
    compiled_at = time.perf_counter()
    hlo = compiled.as_text()
    return {
        "mesh": {axis: int(size) for axis, size in mesh.shape.items()},
        "memory": _memory(compiled.memory_analysis()),
        "xla_cost": _cost(compiled.cost_analysis()),
        "analytic_flops": flops.step_flops(traced, len(devices)),
        "collectives": collectives.collectives(hlo),
        # XLA's cost analysis and the HLO's instructions count a while loop's body once,
        # whatever its trip count (scanned layers, microbatches)
        "has_loops": " while(" in hlo,
        "lower_s": lowered_at - start,
        "compile_s": compiled_at - lowered_at,
    }


def _memory(analysis) -> dict:
    """Per-device bytes; outputs aliased to donated arguments count once."""
    fields = {
        "argument": analysis.argument_size_in_bytes,
        "output": analysis.output_size_in_bytes,
        "alias": analysis.alias_size_in_bytes,
        "temp": analysis.temp_size_in_bytes,
        "code": analysis.generated_code_size_in_bytes,
    }
    fields = {k: int(v) for k, v in fields.items()}
    fields["total"] = (
        fields["argument"] + fields["output"] - fields["alias"] + fields["temp"] + fields["code"]
    )
    return fields


def _cost(analysis) -> dict | None:
    """XLA's per-device FLOPs and bytes accessed (None where the backend gives none: GPU)."""
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return {
        "flops": float(analysis["flops"]),
        "bytes_accessed": float(analysis.get("bytes accessed", 0.0)),
    }
