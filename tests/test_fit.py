"""config.fit: the per-hardware settings that make a :paper batch fit (mvl/runtime/fit.py), how
a run finds its hardware, and how `mvl.compile --search` starts from them."""

import types

import pytest

from mvl import config as config_lib
from mvl.runtime import fit


def device(kind, platform, coords=None, slice_index=0):
    return types.SimpleNamespace(
        device_kind=kind, platform=platform, coords=coords, slice_index=slice_index
    )


def test_a_paper_config_carries_its_fit_and_the_command_line_wins():
    cfg = config_lib.load_config("configs/clip.py:paper")
    assert fit.settings(cfg, "h100_1x1x8") == {"model.remat": "full"}
    assert cfg.model.remat == "none"  # nothing applied until the hardware is known
    chosen = fit.apply(cfg, "h100_1x1x8", keep={"model.remat": "dots"})
    assert chosen == {} and cfg.model.remat == "none"  # the user's key is left alone
    assert fit.apply(cfg, "h100_1x1x8") == {"model.remat": "full"}
    assert cfg.model.remat == "full" and cfg.is_locked
    assert fit.apply(cfg, "a100_1x4x8") == {}  # no entry: the config's own settings


def test_every_fit_entry_names_real_keys_with_valid_values():
    for name in ("clip", "siglip", "flip", "mae", "mvp", "maskclip", "maskvlm", "mlim"):
        cfg = config_lib.load_config(f"configs/{name}.py:paper")
        for hardware in cfg.fit:
            fit.apply(cfg, hardware)  # ConfigError on an unknown key or a bad value


def test_a_malformed_fit_entry_is_one_line_naming_it():
    cfg = config_lib.load_config("configs/clip.py:paper")
    cfg.unlock()
    cfg.fit.h100_1x1x8 = "model.remat"
    with pytest.raises(config_lib.ConfigError, match=r"fit\.h100_1x1x8: 'model.remat'"):
        fit.settings(cfg, "h100_1x1x8")
    cfg.fit.h100_1x1x8 = "model.remat_policy=full"
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'model.remat_policy'"):
        fit.apply(cfg, "h100_1x1x8")


def test_the_hardware_is_named_as_mvl_compile_names_topologies():
    gpus = [device("NVIDIA H100 80GB HBM3", "gpu") for _ in range(16)]
    assert fit.hardware_of(gpus, process_count=2) == "h100_1x2x8"
    v5e = [device("TPU v5 lite", "tpu", (x, y, 0)) for x in range(16) for y in range(16)]
    assert fit.hardware_of(v5e) == "v5e_16x16"
    v5p = [device("TPU v5", "tpu", (x, y, z)) for x in range(4) for y in range(4) for z in range(4)]
    assert fit.hardware_of(v5p) == "v5p_4x4x4"
    two = [
        device("TPU v5 lite", "tpu", (x, y, 0), s) for s in (0, 1) for x in (0, 1) for y in (0, 1)
    ]
    assert fit.hardware_of(two) == "v5e_2x2_2slices"
    assert fit.hardware_of([device("cpu", "cpu")]) is None


def test_mvl_compile_names_a_target_the_way_fit_entries_do():
    from mvl.compile import topology

    assert topology.parse("h100:1x1x8").fit_key == fit.key("h100:1x1x8") == "h100_1x1x8"
    assert topology.parse("v5e-256").fit_key == "v5e_16x16"
    assert topology.parse("v5e:2x2", num_slices=2).fit_key == "v5e_2x2_2slices"


def test_search_starts_from_the_config_then_moves_remat_the_way_the_result_points():
    from mvl.compile import search

    cfg = config_lib.load_config("configs/clip.py:paper")
    fit.apply(cfg, "v5e_16x16")  # remat dots
    first = search.candidates(cfg, 256)
    own = {"mesh.data": 256, "mesh.fsdp": 1, "mesh.tensor": 1, "model.remat": "dots"}
    assert first[0] == own and own not in first[1:]
    assert search.candidates(cfg, 256, own_fits=True)[1] == {**own, "model.remat": "none"}
    assert search.candidates(cfg, 256, own_fits=False)[1] == {**own, "model.remat": "full"}


def test_mvl_main_applies_the_entry_of_the_hardware_it_finds(monkeypatch, capsys):
    import jax

    from mvl import main

    monkeypatch.setattr(jax, "devices", lambda: [device("NVIDIA H100 80GB HBM3", "gpu")] * 8)
    cfg = config_lib.load_config("configs/clip.py:paper")
    main.fit_to_hardware(cfg, overrides={})
    assert cfg.model.remat == "full"
    assert "[fit] h100_1x1x8: model.remat=full" in capsys.readouterr().out
    cfg = config_lib.load_config("configs/clip.py:paper")
    main.fit_to_hardware(cfg, overrides={"model.remat": "dots"})  # the command line's value stays
    assert cfg.model.remat == "none"
