"""SigLIP 2's parts: the captioning decoder's loss and causality, local crops, staged
objectives (exact zero before the start, the weight after, across a resume), and every
objective's loss falling on a tiny demo."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mvl.config import ConfigError
from mvl.data import local_crops
from mvl.models.caption_decoder import CaptionDecoder
from mvl.models.vocab_scores import logit_scores
from mvl.objectives.caption import scored_mean
from mvl.train.loop import Trainer

# The siglip2 demo at TINY sizes; the caption decoder's section is not in TINY.
TINY_DECODER = {
    "model.caption_decoder.width": "32",
    "model.caption_decoder.num_heads": "2",
    "model.caption_decoder.mlp_dim": "64",
    "data.local_crops.count": "2",
    "data.local_crops.size": "16",  # small views: a 2 x 2 grid beside the image's 4 x 4
    "objectives.caption.loss_chunk": "4",  # the vocabulary scored 4 of 23 positions at a time
    "objectives.self_distill.head_hidden": "32",
    "objectives.self_distill.head_bottleneck": "16",
    "objectives.self_distill.prototypes": "32",
    "objectives.masked_prediction.head_hidden": "32",
    "objectives.masked_prediction.head_bottleneck": "16",
    "objectives.masked_prediction.prototypes": "32",
}


def test_caption_loss_is_the_hand_computed_cross_entropy():
    logits = np.array(
        [[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]], [[0.0, 1.0, 3.0], [1.0, -2.0, 0.0]]], np.float32
    )
    targets = np.array([[0, 2], [2, 1]])
    weights = np.array([[1, 1], [1, 0]])  # the last target is a pad: not scored
    expected = []
    for b, t in ((0, 0), (0, 1), (1, 0)):
        row = logits[b, t].astype(np.float64)
        log_z = np.log(np.exp(row).sum())
        expected.append(log_z - row[targets[b, t]])
    nll, correct = logit_scores(jnp.asarray(logits), jnp.asarray(targets))
    loss, metrics = scored_mean(nll, correct, jnp.asarray(weights))
    np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-6)
    # argmax hits: row 0 pos 0 (0 == 0), row 1 pos 0 (2 == 2); row 0 pos 1 misses
    np.testing.assert_allclose(metrics["accuracy"], 2 / 3, rtol=1e-6)


def test_a_later_caption_token_does_not_change_an_earlier_prediction():
    decoder = CaptionDecoder(vocab_size=50, max_len=8, width=16, depth=2, num_heads=2, mlp_dim=32)
    ids = jax.random.randint(jax.random.PRNGKey(0), (2, 8), 0, 50)
    image = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 24))
    params = decoder.init(jax.random.PRNGKey(2), ids, image)
    changed = ids.at[:, 5].set((ids[:, 5] + 7) % 50)
    before = decoder.apply(params, ids, image, True)
    after = decoder.apply(params, changed, image, True)
    np.testing.assert_array_equal(before[:, :5], after[:, :5])  # positions 0..4 see 0..4 only
    assert not np.allclose(before[:, 5:], after[:, 5:])  # position 5 on sees the change
    # parallel prediction ignores the inputs' ids (mask tokens) but not the image
    parallel = decoder.apply(params, ids, image, False)
    np.testing.assert_array_equal(parallel, decoder.apply(params, changed, image, False))
    assert not np.allclose(parallel, decoder.apply(params, ids, image + 1.0, False))


def test_local_crops_lie_within_the_image_and_follow_the_scale_range():
    scale, ratio = (0.05, 0.4), (3 / 4, 4 / 3)
    boxes = np.asarray(local_crops.sample_boxes(jax.random.PRNGKey(0), 64, 8, scale, ratio))
    top, left, height, width = np.moveaxis(boxes, -1, 0)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + height <= 1 + 1e-6).all() and (left + width <= 1 + 1e-6).all()
    area = height * width
    assert (area >= scale[0] - 1e-6).all() and (area <= scale[1] + 1e-6).all()
    assert area.min() < 0.1 and area.max() > 0.3  # the range is used, not one value
    aspect = width / height
    assert (aspect >= ratio[0] - 1e-5).all() and (aspect <= ratio[1] + 1e-5).all()
    # the same key gives the same boxes (a resumed step cuts the same crops)
    again = local_crops.sample_boxes(jax.random.PRNGKey(0), 64, 8, scale, ratio)
    np.testing.assert_array_equal(boxes, again)


def test_a_crop_shows_the_pixels_of_its_box():
    # an image whose pixel value is its column: a box's crop spans the box's columns
    image = jnp.broadcast_to(jnp.arange(32, dtype=jnp.float32)[None, :, None], (32, 32, 3))
    box = jnp.array([[[0.25, 0.5, 0.5, 0.25]]])  # top 8, left 16, 16 high, 8 wide
    crop = np.asarray(local_crops.crop_and_resize(image[None], box, 16))[0, 0]
    assert crop.shape == (16, 16, 3)
    assert 15.5 <= crop[..., 0].min() and crop[..., 0].max() <= 23.5
    whole = local_crops.crop_and_resize(image[None], jnp.array([[[0.0, 0.0, 1.0, 1.0]]]), 32)
    np.testing.assert_allclose(np.asarray(whole)[0, 0], image, atol=1e-4)


def test_local_crop_keys_are_checked():
    crops = dict(count=2, scale=(0.5, 0.2), ratio=(0.75, 1.33))
    cfg = ml_collections.ConfigDict(dict(data=dict(local_crops=crops)))
    with pytest.raises(ConfigError, match="data.local_crops.scale"):
        local_crops.validate(cfg)


@pytest.mark.parametrize("size", [12, 40, -8])
def test_a_local_view_size_off_the_patch_grid_is_a_config_error(size):
    crops = dict(count=2, scale=(0.05, 0.4), ratio=(0.75, 1.33), size=size)
    cfg = ml_collections.ConfigDict(
        dict(data=dict(local_crops=crops, image_size=32), model=dict(image=dict(patch_size=8)))
    )
    with pytest.raises(ConfigError, match="data.local_crops.size"):
        local_crops.validate(cfg)


def test_local_views_have_the_requested_size_or_the_image_size():
    images = jax.random.uniform(jax.random.PRNGKey(0), (3, 32, 32, 3))
    section = ml_collections.ConfigDict(
        dict(count=2, scale=(0.05, 0.4), ratio=(0.75, 1.33), size=16)
    )
    assert local_crops.local_views(jax.random.PRNGKey(1), images, section).shape == (
        6, 16, 16, 3,
    )  # fmt: skip
    section.size = 0
    assert local_crops.local_views(jax.random.PRNGKey(1), images, section).shape == (
        6, 32, 32, 3,
    )  # fmt: skip


def siglip2_config(tiny_config, **overrides):
    return tiny_config("siglip2", **{**TINY_DECODER, **overrides})


def test_staged_objective_keys_are_validated(tiny_config):
    from mvl import validate

    with pytest.raises(ConfigError, match="objectives.self_distill.start_fraction"):
        bad = {"objectives.self_distill.start_fraction": "1.5"}
        validate.validate(siglip2_config(tiny_config, **bad))
    cfg = siglip2_config(tiny_config)
    with cfg.unlocked():
        cfg.objectives.caption.start_step = 2
        cfg.objectives.caption.start_fraction = 0.5
    with pytest.raises(ConfigError, match="not both"):
        validate.validate(cfg)


def grads_at(trainer, batch):
    """The train step's gradient and metrics at the trainer's current state (no update)."""
    from mvl.train import step as step_lib

    cfg, state = trainer.cfg, trainer.state
    teacher = (trainer.teacher_model, state.teacher)
    mask_rng, objective_rng = step_lib.step_rngs(state)

    def loss_fn(params, only):
        sub = cfg.copy_and_resolve_references()
        with sub.unlocked():
            for name in sub.objectives:
                if name not in only:
                    sub.objectives[name].weight = 0.0
        masks = step_lib.make_masks(sub, batch, mask_rng, trainer.model)
        return step_lib.losses_with_masks(
            trainer.model, sub, params, batch, masks, objective_rng, teacher, True, state.step
        )

    def grad_of(only):
        return jax.jit(jax.grad(lambda p: loss_fn(p, only)[0]))(state.params)

    return grad_of


@pytest.mark.slow(minutes=4)
def test_staged_objective_is_zero_before_its_start_and_weighted_after_across_a_resume(
    tiny_config, tmp_path
):
    """self_distill starts at step 2 (weight 0.5): at state.step 1 its gradient is
    exactly zero and the step's gradient is the other objectives'; at step 2 the
    step's gradient is theirs plus 0.5 x its own. Resuming from step 1 (before the start)
    or step 3 (after) gives the uninterrupted run's losses exactly."""
    cfg = siglip2_config(
        tiny_config,
        **{
            "objectives.self_distill.weight": "0.5",
            "objectives.masked_prediction.weight": "0.0",
            "objectives.caption.weight": "0.0",
            "checkpoint.every_steps": "1",
            "log_every_steps": "1",
            "total_steps": "5",
        },
    )
    with cfg.unlocked():
        del cfg.objectives.self_distill["start_fraction"]
        cfg.objectives.self_distill.start_step = 2
    trainer = Trainer(cfg, str(tmp_path / "a"))
    batches = [trainer.next_batch() for _ in range(5)]
    trainer.step(batches[0])
    for step, active in ((1, False), (2, True)):
        assert int(trainer.state.step) == step
        grad_of = grads_at(trainer, batches[step])
        alone = grad_of({"self_distill"})
        others = grad_of({"siglip"})
        both = grad_of({"siglip", "self_distill"})
        leaves = jax.tree.leaves
        if not active:
            assert all(np.all(np.asarray(g) == 0) for g in leaves(alone))
            for b, o in zip(leaves(both), leaves(others)):
                np.testing.assert_allclose(b, o, rtol=1e-6, atol=1e-9)
        else:
            assert any(np.any(np.asarray(g) != 0) for g in leaves(alone))
            for b, o, a in zip(leaves(both), leaves(others), leaves(alone)):
                np.testing.assert_allclose(b, o + a, rtol=1e-4, atol=1e-7)
            # `alone` is 0.5 x the objective's own gradient: its weight applies
            with trainer.cfg.unlocked():
                trainer.cfg.objectives.self_distill.weight = 1.0
            full = grads_at(trainer, batches[step])({"self_distill"})
            with trainer.cfg.unlocked():
                trainer.cfg.objectives.self_distill.weight = 0.5
            for a, f in zip(leaves(alone), leaves(full)):
                np.testing.assert_allclose(a, 0.5 * np.asarray(f), rtol=1e-4, atol=1e-8)
        metrics = jax.device_get(trainer.step(batches[step]))
        assert metrics["stage/self_distill"] == float(active)
        assert (metrics["self_distill/loss"] > 0) == active
    reference = [jax.device_get(trainer.step(b))["loss"] for b in batches[3:]]

    for resume_at in (1, 3):  # before the start, after it
        first = Trainer(cfg, str(tmp_path / f"r{resume_at}"))
        for b in batches[:resume_at]:
            first.step(b)
        assert first.save()
        first.checkpointer.wait()
        resumed = Trainer(cfg, str(tmp_path / f"r{resume_at}"))
        assert resumed.restore()[0] == resume_at
        losses = [jax.device_get(resumed.step(b))["loss"] for b in batches[resume_at:]]
        np.testing.assert_allclose(losses[-2:], reference, rtol=1e-6)


@pytest.mark.slow(minutes=3)
def test_every_objective_loss_falls_on_the_demo(tiny_config, tmp_path):
    """Caption and sigmoid from step 0, self-distillation and masked prediction from 60%
    of 40 steps: each one's mean over its last steps is below its first steps'."""
    cfg = siglip2_config(tiny_config, **{"total_steps": "40", "optim.lr": "3e-3"})
    with cfg.unlocked():
        for name in ("self_distill", "masked_prediction"):
            cfg.objectives[name].start_fraction = 0.6
    trainer = Trainer(cfg, str(tmp_path))
    history = [jax.device_get(trainer.step(trainer.next_batch())) for _ in range(40)]
    starts = {"siglip": 0, "caption": 0, "self_distill": 24, "masked_prediction": 24}
    for name, first in starts.items():
        losses = [m[f"{name}/loss"] for m in history[first:]]
        assert all(m[f"{name}/loss"] == 0 for m in history[:first]), name
        assert np.mean(losses[-4:]) < np.mean(losses[:4]), (name, losses)


@pytest.mark.slow(minutes=1)
def test_greedy_captions_are_the_decoders_own_argmax_up_to_the_end_token(tiny_config):
    """Each generated token is the argmax of a teacher-forced pass over the tokens
    before it; after the end token only pads follow."""
    from mvl.data.special_tokens import CLS, SENTENCEPIECE
    from mvl.evaluate.captioning import make_greedy_fn
    from mvl.models.model import build_model
    from mvl.train.state import init_params

    cfg = siglip2_config(tiny_config)
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = init_params(model, cfg, jax.random.PRNGKey(0))
    images = jax.random.uniform(jax.random.PRNGKey(1), (3, 32, 32, 3))
    start = jnp.full((3,), CLS, jnp.int32)
    ids = np.asarray(make_greedy_fn(model, 24)(params, images, start))
    assert ids.shape == (3, 24) and (ids[:, 0] == start).all()
    tokens = model.apply({"params": params}, images, method="encode_image")[:, 1:]
    logits = model.apply(
        {"params": params}, "caption_decoder", ids[:, :-1], tokens, True, method="head"
    )
    expected = np.asarray(jnp.argmax(logits, -1))
    for row, want in zip(ids, expected):
        ends = np.flatnonzero(row[1:] == SENTENCEPIECE.end)
        stop = ends[0] + 1 if len(ends) else len(want)
        np.testing.assert_array_equal(row[1 : stop + 1], want[:stop])
        assert (row[stop + 1 :] == SENTENCEPIECE.pad).all()


@pytest.mark.parametrize("chunk", [3, 7, 64])
def test_chunked_caption_scores_match_the_full_logits_and_their_gradient(chunk):
    """The decoder scoring its own targets a few positions at a time gives the loss and
    the gradient of the full-logits cross-entropy (chunks that do not divide L too)."""
    decoder = CaptionDecoder(vocab_size=50, max_len=8, width=16, depth=1, num_heads=2, mlp_dim=32)
    ids = jax.random.randint(jax.random.PRNGKey(0), (3, 8), 0, 50)
    image = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 24))
    params = decoder.init(jax.random.PRNGKey(2), ids[:, :-1], image)
    weights = jnp.ones((3, 7)).at[2, 4:].set(0.0)

    def full(p):
        logits = decoder.apply(p, ids[:, :-1], image, True)
        return scored_mean(*logit_scores(logits, ids[:, 1:]), weights)[0]

    def chunked(p):
        nll, correct = decoder.apply(p, ids[:, :-1], image, True, ids[:, 1:], chunk)
        return scored_mean(nll, correct, weights)[0]

    np.testing.assert_allclose(chunked(params), full(params), rtol=1e-6)
    grads = jax.tree.leaves(jax.grad(chunked)(params))
    for got, want in zip(grads, jax.tree.leaves(jax.grad(full)(params))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    logits = decoder.apply(params, ids[:, :-1], image, True)
    _, correct = decoder.apply(params, ids[:, :-1], image, True, ids[:, 1:], chunk)
    np.testing.assert_array_equal(correct, np.argmax(logits, -1) == np.asarray(ids[:, 1:]))


def test_a_negative_caption_loss_chunk_is_a_config_error(tiny_config):
    from mvl import validate

    with pytest.raises(ConfigError, match="objectives.caption.loss_chunk"):
        validate.validate(siglip2_config(tiny_config, **{"objectives.caption.loss_chunk": "-1"}))
