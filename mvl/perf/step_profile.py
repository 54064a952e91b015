"""Where a compiled step's time goes, op by op: `python -m mvl.bench --profile DIR`.

Runs the config's train step a few times under `jax.profiler` (a trace TensorBoard's
profile plugin also opens, in DIR), then reads the trace's XPlane file itself and sums
each XLA op's time on the executor threads: the top ops and the share of each kind
(matmul, fused elementwise, transpose / copy, reduce, collective incl. the waits at its
rendezvous, other). On CPU the ops
are XLA's thunks (`dot`, `*_fusion`, XNNPACK's `ynn_fusion`, ...), and a share is of
summed thread time, so ops that ran in parallel both count. The XPlane protobuf is read
with the definitions TensorFlow ships (tensorflow is installed with
tensorflow-datasets).
"""

from __future__ import annotations

import collections
import glob
import os
import re

# Op name -> kind, first match wins. XNNPACK fusions ("ynn_fusion") are its GEMMs with
# their fused epilogues; oneDNN / cuBLAS / cuDNN calls are matmuls too.
KINDS = (
    ("matmul", re.compile(r"^(dot|convolution|ynn_fusion|.*gemm|.*cublas|.*cudnn|.*onednn)", re.I)),
    # collectives, and the waits at their rendezvous (devices that arrived early)
    (
        "collective",
        re.compile(
            r"^(all-reduce|all-gather|reduce-scatter|all-to-all|collective|.*rendezvous|wait)",
            re.I,
        ),
    ),
    ("transpose / copy", re.compile(r"^(transpose|copy|.*transpose.*fusion|bitcast)", re.I)),
    ("reduce", re.compile(r"^(reduce|.*reduce.*fusion)", re.I)),
    ("fused elementwise", re.compile(r".*fusion", re.I)),
)
# The executor's own spans, which contain the ops: not ops themselves.
WRAPPERS = re.compile(r"ThunkExecutor|Execute|PjitFunction|PjRt|\$", re.I)


def kind_of(op: str) -> str:
    for kind, pattern in KINDS:
        if pattern.match(op):
            return kind
    return "other"


def op_times(trace_dir: str) -> collections.Counter:
    """{op name: summed seconds} over the executor threads of the newest trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))
    if not files:
        raise FileNotFoundError(f"no .xplane.pb under {trace_dir}")
    space = xplane_pb2.XSpace()
    with open(files[-1], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name == "python":  # the caller's thread: dispatch, not ops
                continue
            for event in line.events:
                op = names.get(event.metadata_id, "")
                if op and not WRAPPERS.search(op):
                    times[op] += event.duration_ps * 1e-12
    return times


def summary(times: collections.Counter, top: int = 15) -> dict:
    total = sum(times.values()) or 1.0
    kinds = collections.Counter()
    for op, seconds in times.items():
        kinds[kind_of(op)] += seconds
    return {
        "op_seconds_total": total,
        "kinds": {k: v / total for k, v in kinds.most_common()},
        "top_ops": [(op, s / total, kind_of(op)) for op, s in times.most_common(top)],
    }


def run(cfg, workdir: str, steps: int, trace_dir: str) -> dict:
    import jax

    from mvl.runtime import sharding
    from mvl.train.loop import Trainer

    trainer = Trainer(cfg, workdir)
    batch = trainer.next_batch()
    with sharding.activate(trainer.mesh, trainer.rules):
        compiled = trainer.train_step.lower(trainer.state, batch).compile()
        state = trainer.state
        for _ in range(2):  # warm-up outside the trace
            state, metrics = compiled(state, batch)
        jax.block_until_ready(state)
        jax.profiler.start_trace(trace_dir)
        for _ in range(steps):
            state, metrics = compiled(state, batch)
            jax.block_until_ready((state, metrics))
        jax.profiler.stop_trace()
    return summary(op_times(trace_dir))


def table(result: dict) -> str:
    lines = ["| kind | share of op time |", "|---|---|"]
    lines += [f"| {kind} | {share:.1%} |" for kind, share in result["kinds"].items()]
    lines += ["", "| op | share | kind |", "|---|---|---|"]
    lines += [f"| {op} | {share:.1%} | {kind} |" for op, share, kind in result["top_ops"]]
    return "\n".join(lines)
