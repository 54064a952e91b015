"""python -m mvl.compile: the real train step compiled for abstract TPU and GPU
topologies on this CPU. Needs the AOT compilers (requirements-aot.txt: libtpu and the
CUDA plugin); .ci/run installs them in a second environment and runs this file there."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is absent
        return False


HAVE_TPU_COMPILER = installed("libtpu")
HAVE_GPU_COMPILER = installed("jax_plugins.xla_cuda12")
needs_aot = pytest.mark.skipif(
    not (HAVE_TPU_COMPILER and HAVE_GPU_COMPILER),
    reason="AOT compilers absent: pip install -r requirements-aot.txt "
    "(.ci/run does, in .ci-venv-aot)",
)

# A CLIP step small enough to compile in well under a minute, with widths of whole
# 128-lane tiles so TPU padding does not inflate XLA's FLOPs against mvl's count.
SMALL = {
    "batch_size": "32",
    "data.image_size": "64",
    "data.max_text_len": "24",
    "data.vocab_size": "128",
    "model.image.patch_size": "8",
    "model.image.depth": "1",
    "model.text.depth": "1",
    "model.image.width": "256",
    "model.image.mlp_dim": "1024",
    "model.image.num_heads": "2",
    "model.text.width": "256",
    "model.text.mlp_dim": "1024",
    "model.text.num_heads": "2",
    "model.embed_dim": "128",
}


def compile_cli(tmp_path, *args, overrides=SMALL):
    """Runs the command in a clean environment (the suite's CPU-only XLA_FLAGS would
    reach the GPU compiler); returns (exit status, stderr, JSON or None)."""
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    command = [sys.executable, "-m", "mvl.compile", "--config", "configs/clip.py:demo", *args]
    command += [f"--config.{k}={v}" for k, v in overrides.items()] + ["--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    found = json.loads(out.read_text()) if out.exists() else None
    return result.returncode, result.stderr, found


def check_memory(found):
    memory = found["per_chip_bytes"]
    assert set(memory) == {"argument", "output", "alias", "temp", "code", "total"}
    assert memory["argument"] > 0 and memory["total"] > 0
    # TPU reports donated outputs as 0 bytes, and small temporaries outside HBM
    assert all(memory[k] >= 0 for k in ("output", "alias", "temp", "code"))
    assert found["hbm_bytes"] > memory["total"]


@needs_aot
@pytest.mark.slow(minutes=2)
def test_tpu_v5e_2x2_reports_memory_flops_and_collectives(tmp_path):
    status, stderr, found = compile_cli(tmp_path, "--topology", "v5e:2x2")
    assert status == 0, stderr[-2000:]
    assert found["num_devices"] == 4 and found["fits"] and found["platform"] == "tpu"
    check_memory(found)
    xla = found["xla_flops_per_step"]["per_device"]
    mvl = found["analytic_flops_per_step"]["per_device"]
    assert abs(mvl - xla) / xla < 0.10, (mvl, xla)
    # data parallel over 4 chips: the gradients are all-reduced, at least their size
    params_bytes = found["per_chip_bytes"]["argument"] / 4  # params + 2 Adam moments ~ 3x
    assert found["collectives"]["all-reduce"]["bytes"] > params_bytes
    assert found["roofline_step_s"] > 0 and 0 < found["mfu_ceiling"] <= 1
    assert found["decode_images_per_s_per_core"] > 0 and found["compile_s"] > 0
    assert set(found["chip_table"]) >= {"v4", "v5e", "v5p", "v6e", "a100", "h100", "h200"}


@needs_aot
@pytest.mark.slow(minutes=2)
def test_gpu_host_of_two_h100s_and_an_over_large_batch(tmp_path):
    status, stderr, found = compile_cli(tmp_path, "--gpu", "h100:1x1x2")
    assert status == 0, stderr[-2000:]
    assert found["num_devices"] == 2 and found["fits"] and found["platform"] == "gpu"
    assert found["xla_flops_per_step"] is None  # XLA's GPU compiler reports no cost
    assert found["analytic_flops_per_step"]["global"] > 0
    check_memory(found)

    big = {**SMALL, "batch_size": "32768", "data.image_size": "224"}
    big.update({"model.image.patch_size": "16"})
    status, stderr, found = compile_cli(tmp_path, "--gpu", "h100:1x1x2", overrides=big)
    assert status == 3 and found is not None and not found["fits"], stderr[-2000:]
    assert found["per_chip_bytes"]["total"] > found["usable_bytes"]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "does not fit" in lines[0] and "mesh.fsdp" in lines[0], stderr


@needs_aot
def test_unknown_topology_is_one_line_naming_the_accepted_forms(tmp_path):
    status, stderr, found = compile_cli(tmp_path, "--topology", "v9z:4x4")
    lines = stderr.strip().splitlines()
    assert status == 2 and found is None and len(lines) == 1, stderr
    assert "unknown chip 'v9z'" in lines[0] and "v5e:16x16" in lines[0] and "h100:1x1x8" in lines[0]


def test_topology_names_translate_and_refuse():
    from mvl.compile import topology

    assert topology.parse("v5e-256").shape == (16, 16)
    assert topology.parse("v5p-128").shape == (4, 4, 4)  # 128 TensorCores = 64 chips
    assert topology.parse("v4-32").shape == (2, 2, 4)
    assert topology.parse("v5e:16x16", num_slices=2).num_chips == 512
    assert topology.parse("h100:1x2x8").num_chips == 16
    for bad in ("v5e:4x4x4", "v5e-48", "h100:8", "tpu", "v4:2x2"):
        with pytest.raises(topology.TopologyError, match="accepted: TPU"):
            topology.parse(bad)


@needs_aot
def test_mesh_follows_an_abstract_tpu_slice():
    """libtpu's own devices of a v4 2x2x4 slice (4 hosts): each fsdp row of the mesh
    is a compact block of the torus (its bounding box holds nothing else), so the
    row's all-gathers stay on short links."""
    script = """
import json
from mvl.compile import topology
topology.quiet_platform_environment()
import ml_collections
from mvl.runtime import sharding
devices = topology.devices(topology.parse("v4:2x2x4"))
mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(data=4, fsdp=4, tensor=1)), devices)
print(json.dumps([[list(d.coords) for d in row] for row in mesh.devices[:, :, 0]]))
"""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = np.array(json.loads(out.stdout.strip().splitlines()[-1]))  # [4 data, 4 fsdp, xyz]
    assert len({tuple(c) for row in rows for c in row}) == 16
    for row in rows:
        box = (row.max(0) - row.min(0) + 1).prod()
        assert box == len(row), rows


def test_batch_spec_matches_a_real_batch(tiny_config):
    """The shapes and dtypes mvl.compile compiles for are the input pipeline's."""
    from mvl.data import batch_spec
    from mvl.runtime import sharding
    from mvl.train import loop

    cfg = tiny_config("clip")
    mesh = sharding.make_mesh(cfg.mesh)
    tokenizer = loop.load_tokenizer(cfg, "/nonexistent")  # cfg.data.tokenizer is set
    batch = next(iter(loop.train_dataset(cfg, tokenizer, mesh)))
    spec = batch_spec.batch_spec(cfg)
    assert set(batch) == set(spec)
    for key, value in batch.items():
        assert (value.shape, value.dtype) == (spec[key].shape, spec[key].dtype), key


def test_flop_count_multiplies_scans_and_counts_the_backward_pass():
    import jax
    import jax.numpy as jnp

    from mvl.compile import flops

    def layers(w, x):  # 3 layers of [8, 16] @ [16, 16], scanned
        return jax.lax.scan(lambda h, wi: (h @ wi, None), x, w)[0].sum()

    w, x = jnp.zeros((3, 16, 16)), jnp.zeros((8, 16))
    matmul, _ = flops.count(jax.jit(layers).trace(w, x).jaxpr.jaxpr)
    assert matmul == 3 * 2 * 8 * 16 * 16
    # forward + the two products of the backward pass (weights and activations)
    matmul, _ = flops.count(jax.jit(jax.grad(layers)).trace(w, x).jaxpr.jaxpr)
    assert matmul == 3 * 3 * 2 * 8 * 16 * 16


def test_an_ema_teacher_follows_scanned_student_layers(tiny_config):
    """Found by mvl.compile: MaskCLIP's EMA teacher was built unscanned beside a scanned
    student, so the step could not average their parameters."""
    from mvl.data import batch_spec, special_tokens
    from mvl.runtime import sharding
    from mvl.train.program import build_program

    cfg = tiny_config("maskclip", **{"model.scan_layers": "True"})
    mesh = sharding.make_mesh(cfg.mesh)
    program = build_program(cfg, mesh, cfg.data.vocab_size, special_tokens.SENTENCEPIECE)
    batch = batch_spec.batch_spec(cfg, sharding=sharding.batch_sharding(mesh))
    with sharding.activate(mesh):
        state, _ = jax_eval_step(program, batch)
    assert "blocks" in state.teacher["encoder"]


def jax_eval_step(program, batch):
    import jax

    return jax.eval_shape(program.train_step, program.abstract_state, batch)


# One attention layer (forward and backward, bf16, 2048 tokens, 8 sequences a chip)
# compiled with each kernel: what model.attention changes in the compiled memory.
ATTENTION_LAYER = """
import json, sys
from mvl.compile import topology
topology.quiet_platform_environment()
import jax, jax.numpy as jnp, ml_collections
from mvl.models import attention
from mvl.runtime import sharding

target, kernels = sys.argv[1], sys.argv[2].split(",")
devices = topology.devices(topology.parse(target))
mesh = sharding.make_mesh(ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1)), devices)
batch = sharding.batch_sharding(mesh)
tokens = jax.ShapeDtypeStruct((8 * len(devices), 2048, 4, 64), jnp.bfloat16, sharding=batch)
valid = jax.ShapeDtypeStruct(tokens.shape[:2], jnp.bool_, sharding=batch)
found = {}
for kernel in kernels:
    def loss(q, k, v, valid):
        out = attention.dot_product_attention(q, k, v, valid, False, kernel)
        return jnp.sum(out.astype(jnp.float32) ** 2)
    step = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    with sharding.activate(mesh):
        compiled = step.trace(tokens, tokens, tokens, valid).lower().compile()
    calls = [line.split('custom_call_target="')[1].split('"')[0]
             for line in compiled.as_text().splitlines() if 'custom_call_target="' in line]
    found[kernel] = {"temp": compiled.memory_analysis().temp_size_in_bytes, "calls": calls}
print(json.dumps(found))
"""


def compile_attention_layer(target: str, kernels: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    command = [sys.executable, "-c", ATTENTION_LAYER, target, kernels]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_aot
@pytest.mark.slow(minutes=1)
def test_splash_attention_compiles_for_tpu_without_the_score_matrix():
    found = compile_attention_layer("v5e:2x2", "xla,splash")
    assert "tpu_custom_call" in found["splash"]["calls"]  # the Pallas kernel, not XLA's
    # XLA keeps [8, 4, 2048, 2048] float32 scores a chip (512 MiB) for the backward pass
    assert found["xla"]["temp"] > 512 * 2**20
    assert found["splash"]["temp"] < found["xla"]["temp"] / 10


@needs_aot
@pytest.mark.skipif(
    not installed("nvidia.cudnn"),
    reason="cuDNN's library is absent: pip install -r requirements-aot.txt (nvidia-cudnn-cu12)",
)
@pytest.mark.slow(minutes=1)
def test_cudnn_attention_compiles_for_h100_without_the_score_matrix():
    found = compile_attention_layer("h100:1x1x1", "xla,cudnn")
    calls = found["cudnn"]["calls"]
    assert any(c.startswith("__cudnn$fmha") for c in calls), calls  # cuDNN's fused kernel
    assert any(c.startswith("__cudnn$fmha") and c.endswith("Backward") for c in calls), calls
    assert found["xla"]["temp"] > 512 * 2**20
    # the padding mask's bf16 bias [8, 1, 2048, 2048] (64 MiB) stays; the scores do not
    assert found["cudnn"]["temp"] < found["xla"]["temp"] / 4


# SigLIP 2's demo on 8 abstract H100s with FSDP: the shapes of every all-gather in the
# compiled step (the global batch of 528 pairs is a number no weight has).
FSDP_GATHERS = """
import json, re
from mvl.compile import topology
topology.quiet_platform_environment()
from mvl import config as config_lib, validate
from mvl.compile import run
from mvl.data import batch_spec
from mvl.runtime import sharding
from mvl.train import run_tokenizer
from mvl.train.program import build_program

target = topology.parse("h100:1x1x8")
devices = topology.devices(target)
overrides = {"mesh.fsdp": "8", "optim.microbatches": "2", "batch_size": "528"}
cfg = run.load("configs/siglip2.py:demo", overrides)
validate.validate(cfg, len(devices), platform="gpu")
mesh = sharding.make_mesh(cfg.mesh, devices)
program = build_program(cfg, mesh, cfg.data.vocab_size, run_tokenizer.special_ids(cfg))
batch = batch_spec.batch_spec(cfg, sharding=sharding.batch_sharding(mesh))
with sharding.activate(mesh, sharding.rules(cfg.mesh)):
    compiled = program.train_step.trace(program.abstract_state, batch).lower().compile()
shapes = []  # of each all-gather's operands and results (async ones are tuples)
for line in compiled.as_text().splitlines():
    head, found, _ = line.partition(" all-gather")
    if found and "=" in head:
        for dims in re.findall(r"\\w+\\[([\\d,]*)\\]", head.split("=", 1)[1]):
            shapes.append([int(d) for d in dims.split(",") if d])
print(json.dumps(shapes))
"""


@needs_aot
@pytest.mark.slow(minutes=2)
def test_fsdp_gathers_weights_not_the_global_batch_of_head_activations():
    """The self-distillation heads' activations stay sharded by the batch: before their
    constraint, XLA's GPU compiler all-gathered masked prediction's per-patch logits of
    the whole batch ([528, 64, 256] here; 256 GiB a GPU at SigLIP 2's paper scale)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    command = [sys.executable, "-c", FSDP_GATHERS]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    shapes = json.loads(out.stdout.strip().splitlines()[-1])
    assert shapes, "FSDP over 8 GPUs gathers the weights: there must be all-gathers"
    # The sigmoid loss gathers the batch's pooled embeddings [528, D] on purpose (every
    # pair's negatives span the batch); per-token activations must stay sharded.
    assert [528, 96] in shapes
    assert not [s for s in shapes if len(s) >= 3 and s[0] == 528], shapes
