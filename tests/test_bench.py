"""mvl.bench measures a real compiled step: every number present and plausible."""

import json

import pytest

from mvl import bench
from tests.conftest import tiny_for


def test_bench_reports_time_flops_mfu_and_memory(tokenizer_path, tmp_path):
    out = tmp_path / "bench.json"
    overrides = [
        f"--config.{k}={v}"
        for k, v in {**tiny_for("clip"), "data.tokenizer": tokenizer_path}.items()
    ]
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


def test_open_clip_gets_the_same_architecture_and_optimizer(tiny_config):
    from mvl.perf import open_clip_step

    cfg = tiny_config("clip")
    spec = open_clip_step.open_clip_spec(cfg, vocab_size=128, steps=3)
    vision, text = spec["vision_cfg"], spec["text_cfg"]
    assert (vision["image_size"], vision["patch_size"], vision["width"]) == (32, 8, 32)
    assert vision["layers"] == 1 and vision["head_width"] * 2 == 32 and vision["mlp_ratio"] == 2
    assert (text["context_length"], text["vocab_size"], text["heads"]) == (24, 128, 2)
    assert spec["embed_dim"] == 16 and spec["batch_size"] == 16
    assert spec["optim"]["grad_clip_norm"] == cfg.optim.grad_clip_norm


def test_compare_needs_a_clip_config(tokenizer_path, tmp_path, capsys):
    overrides = [
        f"--config.{k}={v}"
        for k, v in {**tiny_for("maskvlm"), "data.tokenizer": tokenizer_path}.items()
    ]
    argv = ["--config", "configs/maskvlm.py:demo", *overrides, "--compare", "open_clip"]
    assert bench.main(argv + ["--workdir", str(tmp_path)]) == 2
    assert "only objective must be itc" in capsys.readouterr().err


def test_compare_times_open_clip_or_says_what_is_missing(tiny_config):
    """CI has no torch: the comparison must say so. Where open_clip is installed, the
    child process times its step and reports its own peak memory."""
    import importlib.util

    import pytest

    from mvl.perf import open_clip_step

    cfg = tiny_config("clip")
    if importlib.util.find_spec("open_clip") is None:
        with pytest.raises(RuntimeError, match="open_clip_torch installed"):
            open_clip_step.compare(cfg, 128, steps=1)
        return
    result = open_clip_step.compare(cfg, 128, steps=2)
    assert result["examples_per_s"] > 0 and result["process_peak_rss_bytes"] > 0


@pytest.mark.slow(minutes=3)  # nine tiny MaskVLM variants, each built and compiled
def test_breakdown_splits_a_maskvlm_step_by_objective(tokenizer_path, tmp_path):
    """Each objective alone and each left out: the whole step costs more FLOPs than any
    part, leaving one out saves FLOPs, and ITC alone (a CLIP step) is the cheapest."""
    out = tmp_path / "breakdown.json"
    overrides = [
        f"--config.{k}={v}"
        for k, v in {**tiny_for("maskvlm"), "data.tokenizer": tokenizer_path}.items()
    ]
    argv = ["--config", "configs/maskvlm.py:demo", *overrides, "--steps", "0", "--breakdown"]
    assert bench.main(argv + ["--json", str(out), "--workdir", str(tmp_path / "w")]) == 0
    rows = json.loads(out.read_text())["breakdown"]
    names = ("itc", "itm", "mlm", "mim")
    assert set(rows) == {"all"} | {f"{v} {n}" for v in ("only", "without") for n in names}
    whole = rows["all"]["flops_per_step"]
    for name in names:
        assert rows[f"without {name}"]["flops_per_step"] < whole, name
        alone = rows[f"only {name}"]
        if "flops_per_step" in alone:  # ITM alone may need ITC's embeddings: then skipped
            assert alone["flops_per_step"] < whole, name
    assert rows["only itc"]["flops_vs_cheapest_single"] == 1.0
    assert rows["all"]["flops_vs_cheapest_single"] > 1.5


def test_sweep_times_each_value_of_one_key(tokenizer_path, tmp_path):
    """FLIP's dropped patches: 75% hidden costs fewer FLOPs than 0%, in one process."""
    out = tmp_path / "sweep.json"
    overrides = [
        f"--config.{k}={v}"
        for k, v in {**tiny_for("flip"), "data.tokenizer": tokenizer_path}.items()
    ]
    argv = ["--config", "configs/flip.py:demo", *overrides, "--steps", "1"]
    argv += ["--sweep", "mask.image.ratio=0.0,0.75", "--json", str(out)]
    assert bench.main(argv + ["--workdir", str(tmp_path / "w")]) == 0
    swept = json.loads(out.read_text())["sweep"]
    assert swept["key"] == "mask.image.ratio" and list(swept["results"]) == ["0.0", "0.75"]
    none, most = swept["results"]["0.0"], swept["results"]["0.75"]
    assert none["flops_vs_first"] == 1.0 and none["speedup"] == 1.0
    # a quarter of the patches through the image tower (the text tower is unchanged)
    assert most["flops_vs_first"] < 0.9
    assert most["step_s"] > 0


def test_profile_reads_the_trace_and_names_the_matmuls(tokenizer_path, tmp_path):
    """A CLIP step's op time from its own jax.profiler trace: shares add up to one and
    the towers' matmuls are found among the ops."""
    out = tmp_path / "profile.json"
    overrides = [
        f"--config.{k}={v}"
        for k, v in {**tiny_for("clip"), "data.tokenizer": tokenizer_path}.items()
    ]
    argv = ["--config", "configs/clip.py:demo", *overrides, "--steps", "2"]
    argv += ["--profile", str(tmp_path / "trace"), "--json", str(out)]
    assert bench.main(argv + ["--workdir", str(tmp_path / "w")]) == 0
    profile = json.loads(out.read_text())["profile"]
    assert abs(sum(profile["kinds"].values()) - 1.0) < 1e-6
    # 8 simulated devices on a few cores: collectives and their waits take most of it
    assert profile["kinds"].get("matmul", 0.0) > 0, profile["kinds"]
    assert profile["kinds"].get("collective", 0.0) > 0, profile["kinds"]
    assert profile["top_ops"] and all(0 < share <= 1 for _, share, _ in profile["top_ops"])
    assert list((tmp_path / "trace").rglob("*.xplane.pb"))  # TensorBoard can open it too


def test_op_kinds():
    from mvl.perf.step_profile import kind_of

    assert kind_of("dot.3") == "matmul" and kind_of("ynn_fusion.2") == "matmul"
    assert kind_of("transpose.7") == "transpose / copy" and kind_of("copy.1") == "transpose / copy"
    assert kind_of("multiply_add_fusion") == "fused elementwise"
    assert kind_of("reduce.4") == "reduce" and kind_of("all-reduce.1") == "collective"
    assert kind_of("Wait: pending_threads=1/8") == "collective"
