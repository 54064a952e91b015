"""MaskCLIP's teacher side of distillation: its own EMA codebook, a running centre kept
in the train state, the teacher's codeword perplexity / entropy and the collapse warning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import main as mvl_main
from mvl.objectives.distill import BATCH_CENTER, CollapseWarning, distill_loss
from mvl.targets.codebook import batch_center, codeword_targets
from mvl.train import ema
from mvl.train.loop import Trainer
from tests.test_main import main_args


def maskclip(tiny_config, **overrides):
    return tiny_config(
        "maskclip",
        **{"teacher.momentum": "0.9", "objectives.distill.codebook_size": "16"},
        **overrides,
    )


def test_teacher_codebook_is_an_ema_of_the_students_and_the_centre_moves(tiny_config, tmp_path):
    cfg = maskclip(tiny_config, **{"objectives.distill.center_momentum": "0.5"})
    trainer = Trainer(cfg, str(tmp_path))
    trainer.restore()
    head = jax.device_get(trainer.state.teacher_head)
    student = jax.device_get(trainer.state.params["codebook"])
    np.testing.assert_array_equal(head["codebook"]["codewords"], student["codewords"])
    np.testing.assert_array_equal(head["center"], np.zeros(16))  # starts at zero
    trainer.step(trainer.next_batch())  # warm-up: the learning rate is 0 at step 0
    head = jax.device_get(trainer.state.teacher_head)
    teacher_tower = jax.device_get(trainer.state.teacher)

    batch = trainer.next_batch()
    metrics = jax.device_get(trainer.step(batch))
    assert BATCH_CENTER not in metrics  # taken out by the step, never logged

    after = jax.device_get(trainer.state.teacher_head)
    student = jax.device_get(trainer.state.params["codebook"])["codewords"]
    assert not np.allclose(after["codebook"]["codewords"], student)  # its own, not shared
    m = float(ema.momentum(1, 0.9, cfg.total_steps))
    expected = m * head["codebook"]["codewords"] + (1 - m) * student
    np.testing.assert_allclose(after["codebook"]["codewords"], expected, rtol=1e-5, atol=1e-6)

    # centre <- 0.5 * centre + 0.5 * this batch's mean teacher score per codeword,
    # scored by the teacher tower and codebook as they were before the step.
    features = trainer.teacher_model.apply({"params": teacher_tower}, batch["image"])[:, 1:]
    batch_mean = batch_center(features, head["codebook"]["codewords"])
    expected_center = 0.5 * head["center"] + 0.5 * batch_mean
    np.testing.assert_allclose(after["center"], expected_center, rtol=1e-4, atol=1e-5)
    assert np.abs(after["center"] - head["center"]).max() > 1e-4


def test_shared_head_without_centre_keeps_no_teacher_head(tiny_config, tmp_path):
    overrides = {"objectives.distill.teacher_head": "shared", "objectives.distill.center": "false"}
    trainer = Trainer(maskclip(tiny_config, **overrides), str(tmp_path))
    trainer.restore()
    assert trainer.state.teacher_head is None
    metrics = jax.device_get(trainer.step(trainer.next_batch()))
    assert 1.0 <= float(metrics["distill/teacher_perplexity"]) <= 16.0


def test_an_unknown_teacher_head_is_named(tiny_config, tmp_path):
    from mvl.config import ConfigError

    with pytest.raises(ConfigError, match="objectives.distill.teacher_head='mean'"):
        Trainer(maskclip(tiny_config, **{"objectives.distill.teacher_head": "mean"}), str(tmp_path))


@pytest.mark.slow(minutes=1)
def test_teacher_head_is_checkpointed_and_restored_exactly(tiny_config, tmp_path):
    first = Trainer(maskclip(tiny_config), str(tmp_path))
    first.restore()
    for _ in range(2):
        first.step(first.next_batch())
    assert first.save()
    first.checkpointer.wait()
    saved = jax.device_get(first.state.teacher_head)
    assert np.abs(saved["center"]).max() > 0  # moved: the check below is not of zeros

    resumed = Trainer(maskclip(tiny_config), str(tmp_path))
    assert resumed.restore()[0] == 2
    same = jax.tree.map(np.array_equal, saved, jax.device_get(resumed.state.teacher_head))
    assert all(jax.tree.leaves(same))


@pytest.mark.slow(minutes=1)
def test_teacher_perplexity_and_entropy_reach_tensorboard(tokenizer_path, tmp_path):
    from mvl.tables.tensorboard_scalars import read_scalars

    workdir = tmp_path / "run"
    args = main_args(tokenizer_path, workdir, "maskclip", total_steps=2, log_every_steps=1)
    assert mvl_main.main(args) == 0
    scalars = read_scalars(str(workdir))
    for tag in ("train/distill/teacher_perplexity", "train/distill/teacher_entropy"):
        assert sorted(scalars[tag]) == [1, 2], tag
    assert not any("batch_center" in tag for tag in scalars)


def test_centre_is_subtracted_from_the_teacher_scores():
    codewords = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    teacher = jnp.array([[[1.0, 0.0]]])  # cos (1, 0)
    plain = codeword_targets(teacher, codewords, 0.5)
    centred = codeword_targets(teacher, codewords, 0.5, jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(plain[0, 0], jax.nn.softmax(jnp.array([2.0, 0.0])), rtol=1e-5)
    np.testing.assert_allclose(centred[0, 0], [0.5, 0.5], rtol=1e-5)  # (1-1, 0-0) / 0.5


def collapsed_and_spread_metrics():
    """(metrics of a teacher mapping every patch to one codeword, of one using all 4)."""
    codewords = jnp.eye(4)
    student = jnp.ones((2, 4, 4))
    hidden = jnp.ones((2, 4), bool)
    collapsed = jnp.tile(jnp.array([1.0, 0.0, 0.0, 0.0]), (2, 4, 1))  # every patch: code 0
    spread = jnp.tile(jnp.eye(4)[None], (2, 1, 1))  # patch k: code k
    _, bad = distill_loss(student, collapsed, codewords, hidden, 0.1, 0.01)
    _, good = distill_loss(student, spread, codewords, hidden, 0.1, 0.01)
    return bad, good


def test_perplexity_and_entropy_tell_collapse_from_spread():
    bad, good = collapsed_and_spread_metrics()
    assert float(bad["teacher_perplexity"]) == pytest.approx(1.0, abs=1e-3)
    assert float(good["teacher_perplexity"]) == pytest.approx(4.0, rel=1e-3)
    # per-patch entropy: sharp (near 0) in both; a uniform teacher would give log 4
    assert float(bad["teacher_entropy"]) < 0.01 and float(good["teacher_entropy"]) < 0.01
    uniform = jnp.zeros((2, 4, 4))  # cos 0 with every codeword (l2_normalize's eps)
    _, flat = distill_loss(jnp.ones((2, 4, 4)), uniform, jnp.eye(4), jnp.ones((2, 4), bool), 1, 1)
    assert float(flat["teacher_entropy"]) == pytest.approx(np.log(4), rel=1e-4)


def test_collapse_warning_fires_once_on_a_collapsed_teacher_and_rearms(capsys):
    bad, good = collapsed_and_spread_metrics()
    metric = "distill/teacher_perplexity"
    warning = CollapseWarning(2.0, codebook_size=4)
    assert warning.check(10, {metric: float(good["teacher_perplexity"])}) is None
    line = warning.check(20, {metric: float(bad["teacher_perplexity"])})
    assert line is not None and "step 20" in line and "collapse_perplexity=2" in line
    assert line in capsys.readouterr().out
    assert warning.check(30, {metric: float(bad["teacher_perplexity"])}) is None  # once
    assert warning.check(40, {metric: float(good["teacher_perplexity"])}) is None
    assert warning.check(50, {metric: float(bad["teacher_perplexity"])}) is not None  # again
    assert CollapseWarning(0.0).check(1, {metric: 1.0}) is None  # 0: off
