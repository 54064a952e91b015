"""Two processes with 4 CPU devices each under jax.distributed train like one process
with 8 devices: same global batches, same losses, a checkpoint saved by both and
resumed, and evaluation gathered across processes."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from mvl.tables.tensorboard_scalars import read_scalars
from tests.conftest import tiny_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(tokenizer_path, workdir, total_steps, *extra):
    overrides = {
        **tiny_for("clip"),
        "data.tokenizer": tokenizer_path,
        "total_steps": str(total_steps),
    }
    return [
        sys.executable,
        "-m",
        "mvl.main",
        "--config",
        "configs/clip.py:demo",
        "--workdir",
        str(workdir),
        *[f"--config.{k}={v}" for k, v in overrides.items()],
        *extra,
    ]


def environment(devices: int) -> dict:
    """This session's cheap XLA flags with `devices` CPU devices, and its compilation
    cache (the resumed run compiles nothing new)."""
    import jax

    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=8", "")
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": ROOT,
        "JAX_COMPILATION_CACHE_DIR": jax.config.jax_compilation_cache_dir,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    }


def run_processes(tokenizer_path, workdir, total_steps, count):
    port = free_port()
    procs = [
        subprocess.Popen(
            command(
                tokenizer_path,
                workdir,
                total_steps,
                f"--coordinator=127.0.0.1:{port}",
                f"--num_processes={count}",
                f"--process_id={index}",
            ),
            cwd=ROOT,
            env=environment(8 // count),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(count)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def train_losses(workdir) -> dict[int, float]:
    return read_scalars(str(workdir)).get("train/loss", {})


@pytest.mark.slow(minutes=4)
def test_two_processes_match_one_process_with_a_checkpoint_between(tokenizer_path, tmp_path):
    one = tmp_path / "one"
    subprocess.run(
        command(tokenizer_path, one, 4),
        cwd=ROOT,
        env=environment(8),
        check=True,
        capture_output=True,
    )
    two = tmp_path / "two"
    run_processes(tokenizer_path, two, 2, count=2)  # saves at step 2 (from both processes)
    # A newer checkpoint with a damaged file: both processes must agree to set it aside
    # and resume from step 2.
    damaged = two / "checkpoints" / "3"
    shutil.copytree(two / "checkpoints" / "2", damaged)
    victim = max((p for p in damaged.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    outputs = run_processes(tokenizer_path, two, 4, count=2)  # resumes from step 2
    for output in outputs:
        assert "checkpoints/3 is unreadable" in output and "resumed from" in output
    assert [p.name.split("-")[0] for p in (two / "unreadable_checkpoints").iterdir()] == ["3"]

    expected, actual = train_losses(one), train_losses(two)
    assert sorted(expected) == [2, 4] and sorted(actual) == [2, 4], (expected, actual)
    for step in (2, 4):
        assert actual[step] == pytest.approx(expected[step], rel=1e-5), step
    final_one = json.loads((one / "eval_final.json").read_text())
    final_two = json.loads((two / "eval_final.json").read_text())
    assert final_one.keys() == final_two.keys()
    for key in final_one:
        assert final_two[key] == pytest.approx(final_one[key], abs=1e-6), key
