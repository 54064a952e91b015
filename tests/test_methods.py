"""Methods beyond MaskVLM on the same train_step: SigLIP, FLIP (token dropping), MAE."""

import json

import jax
import numpy as np
import pytest

from mvl import main as mvl_main
from mvl.models.model import build_model
from mvl.train.loop import Trainer
from tests.test_main import main_args


@pytest.mark.parametrize("method", ["siglip", "flip", "mae"])
def test_method_trains_and_its_loss_falls(tiny_config, tmp_path, method):
    trainer = Trainer(tiny_config(method, **{"optim.lr": "3e-3"}), str(tmp_path))
    losses = [float(trainer.step(trainer.next_batch())["loss"]) for _ in range(16)]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses


def test_flip_encodes_only_the_visible_tokens(tiny_config):
    cfg = tiny_config("flip")  # 32 px, 8 px patches: 16 patches, half dropped
    model = build_model(cfg, 128)
    assert model.image_keep_count == 8 and not model.image_mask_token
    params = jax.jit(model.init)(
        jax.random.PRNGKey(0), np.zeros((2, 32, 32, 3)), np.zeros((2, 24), np.int32)
    )
    keep = np.array([[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]])
    tokens = model.apply(params, np.zeros((2, 32, 32, 3)), None, keep, method="encode_image")
    assert tokens.shape == (2, 1 + 8, cfg.model.image.width)


def test_mae_runs_end_to_end_with_held_out_reconstruction_loss(tokenizer_path, tmp_path):
    workdir = tmp_path / "mae"
    assert mvl_main.main(main_args(tokenizer_path, workdir, "mae", total_steps=2)) == 0
    final = json.loads((workdir / "eval_final.json").read_text())
    assert set(final) == {"held_out/loss", "held_out/mim/loss"}
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
    assert tuned.restore() == 0  # a fresh run: step 0, parameters from the FLIP run
    same = jax.tree.map(np.array_equal, tuned.state.params, flip.state.params)
    assert all(jax.tree.leaves(same))
    assert np.isfinite(float(tuned.step(tuned.next_batch())["loss"]))


def test_init_from_a_different_architecture_names_the_mismatch(tiny_config, tmp_path):
    from mvl.checkpoint import CheckpointMismatchError

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
    from mvl.train.step import compute_losses

    clip = clip_teacher_run(tiny_config, tmp_path / "clip")
    mvp = Trainer(
        tiny_config("mvp", **{"teacher.checkpoint": str(tmp_path / "clip")}), str(tmp_path / "mvp")
    )
    assert mvp.restore() == 0
    teacher_before = jax.device_get(mvp.state.teacher)
    same = jax.tree.map(np.array_equal, teacher_before, jax.device_get(clip.state.params["image"]))
    assert all(jax.tree.leaves(same))  # the teacher is the CLIP run's image tower

    losses = [float(mvp.step(mvp.next_batch())["features/loss"]) for _ in range(3)]
    assert all(np.isfinite(losses))
    unchanged = jax.tree.map(np.array_equal, teacher_before, jax.device_get(mvp.state.teacher))
    assert all(jax.tree.leaves(unchanged))
    # The optimizer holds moments for the student only.
    mu = mvp.state.opt_state[1][0].mu
    assert jax.tree.structure(mu) == jax.tree.structure(mvp.state.params)

    batch = mvp.next_batch()
    rng = jax.random.PRNGKey(0)

    def loss_of_teacher(teacher_params):
        teacher = (mvp.teacher_model, teacher_params)
        return compute_losses(
            mvp.model, mvp.cfg, mvp.state.params, batch, rng, rng, mvp.vocab_size, teacher
        )[0]

    grads = jax.grad(loss_of_teacher)(mvp.state.teacher)
    assert all(float(np.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads))


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
    from mvl.errors import UserError

    with pytest.raises(UserError, match="teacher.checkpoint"):
        Trainer(tiny_config("mvp"), str(tmp_path))


@pytest.mark.parametrize("method", ["clip_mae", "maskvlm_mvp", "siglip_mvp", "maskvlm_ema"])
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


def test_ema_teacher_follows_the_student_inside_train_step(tiny_config, tmp_path):
    from mvl.train import ema

    cfg = tiny_config("maskvlm_ema", **{"teacher.momentum": "0.9"})
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
    assert jax.tree.structure(trainer.state.opt_state[1][0].mu) == jax.tree.structure(
        trainer.state.params
    )
