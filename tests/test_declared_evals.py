"""Evaluators declared in the config (config.evals), the config's sections per method,
and the sharding rules as a config key: the checks that need no training."""

import json
import types

import pytest

from mvl import config as config_lib
from mvl import validate
from mvl.config import ConfigError
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.evaluate import labels, legacy_evals
from mvl.runtime import run_identity


def clip(**overrides):
    cfg = config_lib.load_config("configs/clip.py:demo")
    return config_lib.apply_overrides(cfg, overrides)


def test_each_method_declares_the_evaluations_it_reported_before():
    declared = {
        method: {
            name: s.type
            for name, s in config_lib.load_config(f"configs/{method}.py:demo").evals.items()
        }
        for method in ("clip", "maskvlm", "mae", "mvp", "mlim")
    }
    assert declared["clip"] == {"retrieval": "retrieval", "zeroshot": "zeroshot"}
    assert set(declared["maskvlm"]) == {"retrieval", "zeroshot", "reconstructions"}
    assert set(declared["mae"]) == {"held_out_losses", "probe", "reconstructions"}
    assert set(declared["mvp"]) == {"held_out_losses", "probe"}
    assert set(declared["mlim"]) == {"held_out_losses", "pair_matching", "reconstructions"}
    mlim = config_lib.load_config("configs/mlim.py:demo")
    assert tuple(mlim.evals.pair_matching.modalities) == ("both", "text_only", "image_only")
    assert config_lib.load_config("configs/maskvlm.py:demo").evals.retrieval.itm_rerank_k == 16
    assert mlim.evals.reconstructions.every_steps == 0  # the picture: at the end only


def test_evaluators_are_declared_and_removed_from_the_command_line():
    cfg = clip(
        **{"evals.probe.type": "probe", "evals.probe.steps": "7", "evals.zeroshot.type": "none"}
    )
    assert set(cfg.evals) == {"retrieval", "probe"}
    assert cfg.evals.probe.steps == 7 and cfg.evals.probe.pool == "mean"  # defaults filled in
    validate.validate(cfg)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"evals.x.type": "nope"},
            "config key 'evals.x.type': unknown evaluator type 'nope'; registered:",
        ),
        (
            {"evals.probe.type": "probe", "evals.probe.pool": "max"},
            "config evals.probe.pool='max': must be one of mean, cls",
        ),
        (
            {"evals.retrieval.itm_rerank_k": "-1"},
            "config evals.retrieval.itm_rerank_k=-1: must be an int >= 0",
        ),
        (
            {"evals.retrieval.every_steps": "-5"},
            "config evals.retrieval.every_steps=-5: use an int >= 0",
        ),
        ({"evals.x.type": "tests.outside_evaluator:Nothing"}, "cannot be loaded"),
        (
            {"mesh.rules": "(('embed', 'fsdp'), ('emebd', None))"},
            "config mesh.rules: unknown logical axis 'emebd'",
        ),
        (
            {"mesh.rules": "(('embed', 'model'),)"},
            "config mesh.rules: ('embed', 'model'): map to one of data, fsdp, tensor",
        ),
    ],
)
def test_a_bad_evaluator_or_rule_is_one_line(overrides, message):
    with pytest.raises(ConfigError) as raised:
        validate.validate(clip(**overrides))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_unknown_option_of_a_declared_evaluator_is_named():
    cfg = clip()
    with cfg.unlocked():
        cfg.evals.retrieval.k = 3
    with pytest.raises(
        ConfigError,
        match=r"config evals.retrieval.k: not an option of evaluator 'retrieval' \(options: itm_rerank_k\)",
    ):
        validate.validate(cfg)


def test_an_evaluator_asking_for_labels_the_source_lacks_says_so():
    offered = {"shape": labels.LabelTask("shape", ("circle", "square"), ("a {}",), None)}
    assert [t.name for t in labels.chosen_tasks("evals.z", (), offered, "shapes")] == ["shape"]
    assert labels.chosen_tasks("evals.z", (), {}, "csv:/data/a.csv") == []  # real data: nothing
    with pytest.raises(
        ConfigError,
        match=r"config evals.z.tasks: the held-out source 'csv:x' offers no class names for 'shape' \(it offers: none\)",
    ):
        labels.chosen_tasks("evals.z", ("shape",), {}, "csv:x")
    with pytest.raises(ConfigError, match="offers no class names and prompts for 'size'"):
        labels.chosen_tasks("evals.z", ("size",), offered, "shapes", need_prompts=True)


def test_shapes_offers_its_label_names_and_prompts():
    from mvl.data import pipeline

    source = pipeline.make_source("shapes", "val", size=8, seed=0, image_size=32)
    offered = labels.label_tasks(source, {"shape": [0] * 8, "colour": [1] * 8})
    assert list(offered) == ["shape", "colour"]
    assert len(offered["colour"].class_names) == 8 and "{}" in offered["colour"].prompts[0]


def test_a_config_saved_before_declared_evaluators_is_read_as_it_was_evaluated():
    old = clip().to_dict()
    del old["evals"]
    old["eval"].update(
        held_out_losses=True,
        modalities=("both", "text_only"),
        itm_rerank_k=5,
        probe=dict(enabled=True, pool="cls", steps=9, knn_k=3),
        pair_matching=False,
        num_reconstructions=8,
    )
    import ml_collections

    cfg = ml_collections.ConfigDict(old)
    towers = types.SimpleNamespace(parts={"image", "text", "image_projection", "temperature"})
    legacy_evals.declared(cfg, towers)
    assert {n: s.type for n, s in cfg.evals.items()} == {
        "retrieval": "retrieval",
        "zeroshot": "zeroshot",
        "held_out_losses": "held_out_losses",
        "probe": "probe",
        "reconstructions": "reconstructions",
    }
    assert cfg.evals.retrieval.itm_rerank_k == 5 and cfg.evals.probe.pool == "cls"
    assert tuple(cfg.evals.held_out_losses.modalities) == ("both", "text_only")
    image_only = types.SimpleNamespace(parts={"image", "pixel_decoder"})
    cfg = ml_collections.ConfigDict({**old, "eval": {"every_steps": 0}})
    assert dict(legacy_evals.declared(cfg, image_only).evals) == {}  # MAE-like, no flags


def test_a_method_config_holds_only_the_model_parts_it_builds():
    parts = {
        method: {
            p
            for p in config_lib.PART_NAMES
            if p in config_lib.load_config(f"configs/{method}.py:demo").model
        }
        for method in ("clip", "siglip", "mae", "maskvlm", "maskclip", "mlim", "mvp")
    }
    assert parts == {
        "clip": set(),
        "siglip": set(),
        "mvp": set(),
        "mae": {"pixel_decoder"},
        "maskvlm": {"fusion", "pixel_decoder"},
        "maskclip": {"feature_decoder", "text_decoder"},
        "mlim": {"single_stream", "deconv_decoder"},
    }
    with pytest.raises(ConfigError, match="unknown model part 'decoder'; parts: fusion"):
        config_lib.add_model_parts(config_lib.base_config("demo"), "demo", "decoder")


def test_a_run_started_before_the_sections_were_pruned_resumes(tmp_path):
    """An older mvl saved every model part, the eval flags and no mesh.rules: resuming
    such a workdir with today's config is no change that needs --allow_config_change."""
    cfg = clip()
    saved = run_identity.as_json(cfg)
    del saved["mesh"]["rules"], saved["evals"]
    saved["model"]["deconv_decoder"] = {"width": 32}
    saved["model"]["fusion"] = {"depth": 1, "num_heads": 4, "mlp_dim": 384}
    saved["eval"].update(held_out_losses=False, probe={"enabled": False})
    saved["teacher"].update(checkpoint="", momentum=0.996, image={"width": 96}, act="", ln_eps=0.0)
    (tmp_path / run_identity.CONFIG_FILE).write_text(json.dumps(saved))
    identity = run_identity.RunIdentity(cfg, str(tmp_path))
    identity.check()
    assert identity.unsafe == {}
    changed = run_identity.RunIdentity(clip(**{"mesh.rules": "(('embed', None),)"}), str(tmp_path))
    with pytest.raises(Exception, match="changed: mesh.rules"):
        changed.check()


def test_the_sharding_rules_of_the_config_shard_the_state(tiny_config):
    import jax

    from mvl.runtime import sharding
    from mvl.train.program import build_program

    def spec_of_a_kernel(**overrides):
        cfg = tiny_config("clip", **{"mesh.data": "4", "mesh.fsdp": "2", **overrides})
        mesh = sharding.make_mesh(cfg.mesh, jax.devices())
        program = build_program(cfg, mesh, 128, SENTENCEPIECE)
        kernel = program.state_shardings.params["image"]["patch_embed"]["kernel"]
        return tuple(kernel.spec)

    assert "fsdp" in spec_of_a_kernel()  # DEFAULT_RULES: embed -> fsdp
    rules = repr(tuple((n, None if n == "embed" else a) for n, a in sharding.DEFAULT_RULES))
    assert "fsdp" not in spec_of_a_kernel(**{"mesh.rules": rules})


def test_an_objective_whose_part_section_is_missing_is_named():
    cfg = config_lib.load_config("configs/clip.py:demo")
    with cfg.unlocked():
        cfg.objectives.mim = dict(weight=1.0, loss="mse", normalize=True, fusion=False)
    with pytest.raises(
        ConfigError,
        match=r"config model.pixel_decoder is missing: .*add_model_parts\(c, size, \"pixel_decoder\"\)",
    ):
        validate.validate(cfg)


def test_only_a_method_with_a_teacher_has_the_teacher_section():
    assert dict(config_lib.load_config("configs/clip.py:demo").teacher) == {"kind": "none"}
    mvp = config_lib.load_config("configs/mvp.py:demo").teacher
    assert mvp.kind == "frozen" and mvp.image.width == 96 and mvp.momentum == 0.996
    with pytest.raises(
        ConfigError,
        match=r"config teacher.kind='ema': this config has no teacher section: .*add_teacher\(c, \"ema\"\)",
    ):
        validate.validate(clip(**{"teacher.kind": "ema"}))


def test_runs_started_before_this_rounds_keys_resume_only_as_they_computed(tmp_path):
    """Keys added since (model.attention, objective_grad_norm_every, MLIM's
    recon.reduction, MaskCLIP's teacher head and centre) are no change at the value that
    computes what an older run computed, and a change at the new defaults that compute
    something else (RECON's per-pixel mean, the EMA teacher codebook)."""

    def saved_without(cfg, *dotted):
        saved = run_identity.as_json(cfg)
        for key in dotted:
            *parents, leaf = key.split(".")
            node = saved
            for part in parents:
                node = node[part]
            del node[leaf]
        return saved

    def unsafe(method, overrides, dropped):
        cfg = config_lib.load_config(f"configs/{method}.py:demo")
        config_lib.apply_overrides(cfg, overrides)
        folder = tmp_path / f"{method}_{len(overrides)}"
        folder.mkdir()
        saved = saved_without(cfg, "model.attention", "objective_grad_norm_every", *dropped)
        (folder / run_identity.CONFIG_FILE).write_text(json.dumps(saved))
        identity = run_identity.RunIdentity(cfg, str(folder))
        try:
            identity.check()
        except Exception as e:  # noqa: BLE001 -- the message names the changed keys
            return str(e)
        return ""

    recon = ["objectives.recon.reduction"]
    assert unsafe("mlim", {"objectives.recon.reduction": "sum_per_image"}, recon) == ""
    assert "objectives.recon.reduction" in unsafe("mlim", {}, recon)
    distill = [f"objectives.distill.{k}" for k in
               ("teacher_head", "center", "center_momentum", "collapse_perplexity")]  # fmt: skip
    old_design = {"objectives.distill.teacher_head": "shared", "objectives.distill.center": "False"}
    assert unsafe("maskclip", old_design, distill) == ""
    assert "objectives.distill.teacher_head" in unsafe("maskclip", {}, distill)
    assert unsafe("clip", {"objective_grad_norm_every": "10"}, []) == ""  # a diagnostic
