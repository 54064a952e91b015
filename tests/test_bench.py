"""mvl.bench measures a real compiled step: every number present and plausible."""

import json

from mvl import bench
from tests.conftest import TINY


def test_bench_reports_time_flops_mfu_and_memory(tokenizer_path, tmp_path):
    out = tmp_path / "bench.json"
    overrides = [f"--config.{k}={v}" for k, v in {**TINY, "data.tokenizer": tokenizer_path}.items()]
    argv = ["--config", "configs/clip.py:demo", *overrides, "--steps", "3", "--json", str(out)]
    assert bench.main(argv + ["--workdir", str(tmp_path / "w")]) == 0
    result = json.loads(out.read_text())
    assert result["compile_s"] > 0 and result["step_s_median"] > 0
    assert result["examples_per_s"] == result["batch_size"] / result["step_s_median"]
    # A CLIP step does at least the forward matmuls of both towers: 2 * params * tokens.
    assert result["model_flops_per_step"] > 1e6
    assert 0 < result["mfu_vs_measured_matmul"] < 2
    assert result["compiled_peak_bytes_per_device"] > 0
    assert result["mfu_vs_datasheet"] is None  # a CPU has no datasheet entry


def test_datasheet_peaks_match_device_kinds():
    assert bench.datasheet_peak("TPU v4") == 275e12
    assert bench.datasheet_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert bench.datasheet_peak("cpu") is None
