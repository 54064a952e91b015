"""Methods beyond MaskVLM on the same train_step: SigLIP, FLIP, MAE, MLIM, MaskCLIP, MVP
and compositions no paper used."""

import json

import jax
import numpy as np
import pytest

from mvl import main as mvl_main
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models.model import build_model
from mvl.train.loop import Trainer
from mvl.train.state import init_params
from tests.test_main import main_args


@pytest.mark.parametrize("method", ["siglip", "flip", "mae", "mlim", "maskclip"])
def test_method_trains_and_its_loss_falls(tiny_config, tmp_path, method):
    trainer = Trainer(tiny_config(method, **{"optim.lr": "3e-3"}), str(tmp_path))
    losses = [float(trainer.step(trainer.next_batch())["loss"]) for _ in range(16)]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses


def test_flip_encodes_only_the_visible_tokens(tiny_config):
    cfg = tiny_config("flip")  # 32 px, 8 px patches: 16 patches, half dropped
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = {"params": jax.jit(lambda key: init_params(model, cfg, key))(jax.random.PRNGKey(0))}
    assert "mask_token" not in params["params"]["image"]  # dropped, not replaced
    keep = np.array([[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]])
    tokens = model.apply(params, np.zeros((2, 32, 32, 3)), None, keep, method="encode_image")
    assert tokens.shape == (2, 1 + 8, cfg.model.image.width)


def test_mae_runs_end_to_end_with_held_out_reconstruction_loss(tokenizer_path, tmp_path):
    workdir = tmp_path / "mae"
    assert mvl_main.main(main_args(tokenizer_path, workdir, "mae", total_steps=2)) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    probes = {
        f"probe/{task}/{name}"
        for task in ("shape", "colour")
        for name in ("linear_accuracy", "knn_accuracy", "chance")
    }
    assert set(final) == {"held_out/loss", "held_out/mim/loss"} | probes
    assert np.isfinite(final["held_out/mim/loss"])
    assert list(workdir.glob("reconstructions_*.png"))


def test_flip_unmasked_tuning_starts_from_the_flip_run(tiny_config, tmp_path):
    flip = Trainer(tiny_config("flip"), str(tmp_path / "flip"))
    for _ in range(2):
        flip.step(flip.next_batch())
    assert flip.save()
    flip.checkpointer.wait()

    tune_cfg = tiny_config("flip", "demo,tune", **{"init.checkpoint": str(tmp_path / "flip")})
    assert tune_cfg.mask.image.kind == "none" and not tune_cfg.objectives.itc.masked_image
    tuned = Trainer(tune_cfg, str(tmp_path / "tuned"))
    assert tuned.restore()[0] == 0  # a fresh run: step 0, parameters from the FLIP run
    same = jax.tree.map(np.array_equal, tuned.state.params, flip.state.params)
    assert all(jax.tree.leaves(same))
    assert np.isfinite(float(tuned.step(tuned.next_batch())["loss"]))


def test_init_from_a_different_architecture_names_the_mismatch(tiny_config, tmp_path):
    from mvl.runtime.checkpoint import CheckpointMismatchError

    clip = Trainer(tiny_config("clip"), str(tmp_path / "clip"))
    assert clip.save()
    clip.checkpointer.wait()
    source = {"init.checkpoint": str(tmp_path / "clip"), "model.text.mlp_dim": "96"}
    with pytest.raises(CheckpointMismatchError, match="text/encoder/block0/mlp/fc1/kernel"):
        Trainer(tiny_config("clip", **source), str(tmp_path / "wider")).restore()
    partial = Trainer(
        tiny_config("clip", **source, **{"init.strict": "false"}), str(tmp_path / "p")
    )
    partial.restore()  # takes what matches: the whole image tower, for one
    np.testing.assert_array_equal(
        partial.state.params["image"]["pos_embedding"], clip.state.params["image"]["pos_embedding"]
    )


def clip_teacher_run(tiny_config, workdir) -> Trainer:
    clip = Trainer(tiny_config("clip"), str(workdir))
    clip.step(clip.next_batch())
    assert clip.save()
    clip.checkpointer.wait()
    return clip


def test_mvp_teacher_is_loaded_frozen_and_outside_the_optimizer(tiny_config, tmp_path):
    clip = clip_teacher_run(tiny_config, tmp_path / "clip")
    mvp = Trainer(
        tiny_config("mvp", **{"teacher.checkpoint": str(tmp_path / "clip")}), str(tmp_path / "mvp")
    )
    assert mvp.restore()[0] == 0
    teacher_before = jax.device_get(mvp.state.teacher)
    same = jax.tree.map(np.array_equal, teacher_before, jax.device_get(clip.state.params["image"]))
    assert all(jax.tree.leaves(same))  # the teacher is the CLIP run's image tower

    losses = [float(mvp.step(mvp.next_batch())["features/loss"]) for _ in range(3)]
    assert all(np.isfinite(losses))
    unchanged = jax.tree.map(np.array_equal, teacher_before, jax.device_get(mvp.state.teacher))
    assert all(jax.tree.leaves(unchanged))
    assert_teacher_is_outside_optimizer_and_gradient(mvp)


def assert_teacher_is_outside_optimizer_and_gradient(trainer):
    """No optimizer moments for the teacher, and exactly zero gradient reaches it."""
    from mvl.train.step import compute_losses

    mu = trainer.state.opt_state[1][0].mu
    assert jax.tree.structure(mu) == jax.tree.structure(trainer.state.params)
    batch, rng = trainer.next_batch(), jax.random.PRNGKey(0)

    def loss_of_teacher(teacher_params):
        teacher = (trainer.teacher_model, teacher_params)
        return compute_losses(
            trainer.model,
            trainer.cfg,
            trainer.state.params,
            batch,
            rng,
            rng,
            teacher,
        )[0]

    grads = jax.grad(loss_of_teacher)(trainer.state.teacher)
    assert all(float(np.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


def test_single_stream_hides_masked_patches_and_dropped_modalities(tiny_config):
    cfg = tiny_config("mlim")
    model = build_model(cfg, 128, SENTENCEPIECE)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    ids = rng.integers(6, 128, size=(2, 24)).astype(np.int32)
    params = {"params": jax.jit(lambda key: init_params(model, cfg, key))(jax.random.PRNGKey(0))}

    def encode(images, ids, hidden=None, text_keep=None, image_keep=None):
        return model.apply(
            params, images, ids, hidden, text_keep, image_keep, method="encode_stream"
        )

    hidden = np.zeros((2, 16), bool)
    hidden[:, 5] = True  # patch 5 = rows 8..15, columns 8..15 of the 4x4 grid of 8 px
    repainted = images.copy()
    repainted[:, 8:16, 8:16] = 0.0
    for a, b in zip(encode(images, ids, hidden), encode(repainted, ids, hidden)):
        np.testing.assert_allclose(a, b, atol=1e-6)  # hidden content is invisible
    changed = [not np.allclose(a, b) for a, b in zip(encode(images, ids), encode(repainted, ids))]
    assert all(changed)  # ...and visible when not hidden

    keep_text, keep_image = np.array([False, True]), np.array([True, False])
    other_ids, other_images = ids[::-1].copy(), images[::-1].copy()
    text, patches = encode(images, ids, None, keep_text, keep_image)
    _, patches_other_text = encode(images, other_ids, None, keep_text, keep_image)
    text_other_image, _ = encode(other_images, ids, None, keep_text, keep_image)
    np.testing.assert_allclose(patches[0], patches_other_text[0], atol=1e-6)  # text dropped
    np.testing.assert_allclose(text[1], text_other_image[1], atol=1e-6)  # image dropped
    assert not np.allclose(patches[1], patches_other_text[1])  # example 1 still reads its text


@pytest.mark.slow(minutes=1.2)
def test_mlim_runs_end_to_end_with_held_out_losses_per_modality(tokenizer_path, tmp_path):
    workdir = tmp_path / "mlim"
    assert mvl_main.main(main_args(tokenizer_path, workdir, "mlim", total_steps=2)) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    for key in ("mlm/loss", "recon/loss", "text_only/mlm/loss", "image_only/recon/loss"):
        assert np.isfinite(final[f"held_out/{key}"]), key
    # With the text dropped there is no word to score (and no image with it dropped).
    assert "held_out/image_only/mlm/loss" not in final
    assert "held_out/text_only/recon/loss" not in final
    assert list(workdir.glob("reconstructions_*.png"))


def test_modality_dropout_on_a_two_tower_model_is_named(tiny_config):
    from mvl import validate

    cfg = tiny_config("clip", **{"mask.modality_dropout.probabilities": "(0.1, 0.1, 0.8)"})
    with pytest.raises(ValueError, match="mask.modality_dropout needs a single-stream encoder"):
        validate.validate(cfg)


def test_mvp_teacher_is_sharded_like_the_student(tiny_config, tmp_path):
    clip_teacher_run(tiny_config, tmp_path / "clip")
    cfg = tiny_config(
        "mvp", **{"teacher.checkpoint": str(tmp_path / "clip"), "mesh.data": "1", "mesh.fsdp": "8"}
    )
    mvp = Trainer(cfg, str(tmp_path / "mvp"))
    mvp.restore()
    student, teacher = mvp.state_shardings.params["image"], mvp.state_shardings.teacher
    kernel = ("encoder", "block0", "mlp", "fc1", "kernel")

    def at(tree):
        for key in kernel:
            tree = tree[key]
        return tree

    assert at(teacher).spec == at(student).spec == jax.sharding.PartitionSpec("fsdp", "tensor")
    assert at(mvp.state.teacher).sharding.spec == at(student).spec


def test_mvp_without_a_teacher_checkpoint_is_named(tiny_config, tmp_path):
    from mvl.runtime.errors import UserError

    with pytest.raises(UserError, match="teacher.checkpoint"):
        Trainer(tiny_config("mvp"), str(tmp_path))


@pytest.mark.parametrize(
    "method",
    [
        "clip_mae",
        pytest.param("maskvlm_mvp", marks=pytest.mark.slow(minutes=1.2)),
        "siglip_mvp",
        "maskvlm_ema",
    ],
)
def test_compositions_no_paper_used_train_without_new_code(tiny_config, tmp_path, method):
    overrides = {"optim.lr": "3e-3"}
    cfg = tiny_config(method, **overrides)
    if cfg.teacher.kind == "frozen":
        clip_teacher_run(tiny_config, tmp_path / "clip")
        cfg = tiny_config(method, **overrides, **{"teacher.checkpoint": str(tmp_path / "clip")})
    trainer = Trainer(cfg, str(tmp_path / method))
    trainer.restore()
    steps = [jax.device_get(trainer.step(trainer.next_batch())) for _ in range(10)]
    for name in cfg.objectives:
        assert all(np.isfinite(s[f"{name}/loss"]) for s in steps), name
    losses = [float(s["loss"]) for s in steps]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_ema_momentum_schedule_and_update_formula():
    from mvl.train import ema

    assert float(ema.momentum(0, 0.996, 100)) == pytest.approx(0.996)
    assert float(ema.momentum(50, 0.996, 100)) == pytest.approx(0.998)
    assert float(ema.momentum(100, 0.996, 100)) == pytest.approx(1.0)
    teacher = {"w": np.array([1.0, 2.0]), "b": np.array(4.0)}
    student = {"w": np.array([3.0, 0.0]), "b": np.array(0.0)}
    updated = ema.ema_update(teacher, student, 0.75)
    np.testing.assert_allclose(updated["w"], [1.5, 1.5])  # 0.75 * t + 0.25 * s
    np.testing.assert_allclose(updated["b"], 3.0)


@pytest.mark.parametrize(
    "method", [pytest.param("maskvlm_ema", marks=pytest.mark.slow(minutes=1.4)), "maskclip"]
)
def test_ema_teacher_follows_the_student_inside_train_step(tiny_config, tmp_path, method):
    from mvl.train import ema

    cfg = tiny_config(method, **{"teacher.momentum": "0.9"})
    trainer = Trainer(cfg, str(tmp_path))
    trainer.restore()
    before = jax.device_get(trainer.state.teacher)
    student = ema.same_entries(jax.device_get(trainer.state.params["image"]), before)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, before, student)))  # starts equal
    metrics = jax.device_get(trainer.step(trainer.next_batch()))
    m = float(ema.momentum(0, 0.9, cfg.total_steps))
    assert float(metrics["teacher/momentum"]) == pytest.approx(m)
    student = ema.same_entries(jax.device_get(trainer.state.params["image"]), before)
    expected = jax.tree.map(lambda t, s: m * t + (1 - m) * s, before, student)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
        jax.device_get(trainer.state.teacher),
        expected,
    )
    assert_teacher_is_outside_optimizer_and_gradient(trainer)


def test_stream_itm_swaps_about_half_the_images_and_labels_them():
    from mvl.objectives.stream_itm import swap_images

    images = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1) * np.ones((1, 2, 2, 3))
    paired, labels = swap_images(jax.random.PRNGKey(0), images)
    paired, labels = np.asarray(paired), np.asarray(labels)
    source = paired[:, 0, 0, 0].astype(int)  # which example's image each row now holds
    np.testing.assert_array_equal(source == np.arange(64), labels == 1)
    np.testing.assert_array_equal(source[labels == 0], (np.arange(64) - 1)[labels == 0] % 64)
    assert 16 < labels.sum() < 48


def test_mlim_with_itm_instead_of_recon(tiny_config, tmp_path):
    overrides = {"objectives.recon.weight": "0", "objectives.stream_itm.weight": "1"}
    trainer = Trainer(tiny_config("mlim", **overrides), str(tmp_path))
    assert "stream_itm_head" in trainer.state.params
    assert "deconv_decoder" not in trainer.state.params
    metrics = trainer.step(trainer.next_batch())
    assert np.isfinite(float(metrics["stream_itm/loss"])) and "recon/loss" not in metrics
