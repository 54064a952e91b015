"""Every objective against a value computed by hand on a tiny input."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import targets
from mvl.objectives.itc import itc_loss
from mvl.objectives.itm import itm_loss, sample_hard_negatives
from mvl.objectives.mim import mim_loss
from mvl.objectives.mlm import mlm_loss


def test_itc_matches_hand_computed_infonce():
    image = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    text = jnp.array([[1.0, 0.0], [0.6, 0.8]])
    loss, metrics = itc_loss(image, text, jnp.log(2.0))
    # logits = 2 * image @ text.T = [[2, 1.2], [0, 1.6]]
    i2t = (
        -math.log(math.exp(2) / (math.exp(2) + math.exp(1.2)))
        - math.log(math.exp(1.6) / (math.exp(0) + math.exp(1.6)))
    ) / 2
    t2i = (
        -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))
        - math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))
    ) / 2
    assert float(loss) == pytest.approx((i2t + t2i) / 2, rel=1e-6)
    assert float(metrics["accuracy"]) == 1.0


def test_itc_clips_the_logit_scale():
    image = jnp.eye(2)
    _, metrics = itc_loss(image, image, jnp.log(1000.0), max_scale=100.0)
    assert float(metrics["scale"]) == pytest.approx(100.0)


def test_itm_loss_is_two_way_cross_entropy():
    logits = jnp.array([[0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    labels = jnp.array([1, 0, 0])  # the last row is wrong
    loss, metrics = itm_loss(logits, labels)
    expected = np.mean(
        [math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1)), math.log(1 + math.exp(1))]
    )
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(metrics["accuracy"]) == pytest.approx(2 / 3)


def test_hard_negatives_never_pick_the_positive_and_follow_similarity():
    n = 6
    similarity = jnp.full((n, n), -20.0).at[jnp.arange(n), (jnp.arange(n) + 1) % n].set(5.0)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    negative_text, negative_image = jax.vmap(lambda k: sample_hard_negatives(k, similarity))(keys)
    assert not np.any(np.asarray(negative_text) == np.arange(n))
    assert not np.any(np.asarray(negative_image) == np.arange(n))
    # Row i's hardest negative text is i+1; column j's hardest negative image is j-1.
    assert np.mean(np.asarray(negative_text) == (np.arange(n) + 1) % n) > 0.99
    assert np.mean(np.asarray(negative_image) == (np.arange(n) - 1) % n) > 0.99


def test_mlm_scores_only_weighted_positions():
    logits = jnp.log(jnp.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [1 / 3, 1 / 3, 1 / 3]]]))
    labels = jnp.array([[0, 1, 2]])
    weights = jnp.array([[1, 0, 1]])
    loss, metrics = mlm_loss(logits, labels, weights)
    assert float(loss) == pytest.approx((-math.log(0.5) - math.log(1 / 3)) / 2, rel=1e-6)
    assert float(metrics["accuracy"]) == pytest.approx(0.5)  # position 2 is a 3-way tie


@pytest.mark.parametrize("kind,expected", [("l1", (0.5 + 1.0) / 2), ("mse", (0.25 + 1.0) / 2)])
def test_mim_averages_hidden_patches_only(kind, expected):
    predicted = jnp.array([[[0.5, 0.5], [1.0, 1.0], [9.0, 9.0]]])
    target = jnp.zeros((1, 3, 2))
    hidden = jnp.array([[True, True, False]])
    loss, _ = mim_loss(predicted, target, hidden, kind)
    assert float(loss) == pytest.approx(expected)


def test_pixel_targets_patchify_and_normalise():
    images = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    patches = targets.pixel_targets(images, 2, normalize=False)
    assert patches.shape == (2, 4, 12)
    np.testing.assert_array_equal(patches[0, 1, :3], images[0, 0, 2])  # patch 1 = top right
    np.testing.assert_array_equal(targets.unpatchify(patches, 2), images)
    normalised = targets.pixel_targets(images, 2, normalize=True)
    np.testing.assert_allclose(normalised.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalised.std(-1), 1.0, atol=1e-3)


def test_siglip_matches_hand_computed_sigmoid_loss():
    from mvl.objectives.siglip import siglip_loss

    image = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    text = jnp.array([[1.0, 0.0], [0.6, 0.8]])
    loss, metrics = siglip_loss(image, text, jnp.log(2.0), -1.0)

    # logits = 2 * sim - 1 = [[1, 0.2], [-1, 0.6]]; positives on the diagonal.
    def log_sigmoid(x):
        return -math.log(1 + math.exp(-x))

    row0 = log_sigmoid(1.0) + log_sigmoid(-0.2)
    row1 = log_sigmoid(1.0) + log_sigmoid(0.6)  # negative pair (1, 0): logit -1, label -1
    assert float(loss) == pytest.approx(-(row0 + row1) / 2, rel=1e-6)
    assert float(metrics["scale"]) == pytest.approx(2.0)


def test_recon_is_the_mean_over_images_of_the_masked_sum_of_squares():
    from mvl.objectives.recon import pixel_weights, recon_loss

    images = jnp.zeros((3, 4, 4, 3))
    predicted = jnp.full((3, 4, 4, 3), 0.5)
    hidden = jnp.array([[True, False, False, False], [True, True, False, False], [False] * 4])
    weights = pixel_weights(hidden, grid=2, patch_size=2)
    np.testing.assert_array_equal(weights[0], [[1, 1, 0, 0], [1, 1, 0, 0], [0] * 4, [0] * 4])
    # image 0: 4 pixels * 3 channels * 0.25 = 3; image 1: 6; image 2 has no hidden pixel
    # and does not count.
    loss, metrics = recon_loss(
        predicted, images, weights, jnp.array([True, True, True]), "sum_per_image"
    )
    assert float(loss) == pytest.approx((3.0 + 6.0) / 2)
    assert float(metrics["mse"]) == pytest.approx(0.25)
    dropped, _ = recon_loss(
        predicted, images, weights, jnp.array([True, False, True]), "sum_per_image"
    )
    assert float(dropped) == pytest.approx(3.0)  # a dropped image is not scored


def test_distill_is_cross_entropy_of_codeword_distributions_on_hidden_patches():
    from mvl.objectives.distill import distill_loss

    codewords = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    teacher = jnp.array([[[2.0, 0.0], [0.0, 5.0]]])  # cos with codewords: (1, 0), (0, 1)
    student = jnp.array([[[0.6, 0.8], [1.0, 0.0]]])  # cos: (0.6, 0.8), (1, 0)
    hidden = jnp.array([[True, False]])
    loss, metrics = distill_loss(student, teacher, codewords, hidden, 0.5, 0.25)
    target = np.exp([4.0, 0.0]) / np.exp([4.0, 0.0]).sum()  # softmax((1, 0) / 0.25)
    log_probs = np.array([1.2, 1.6]) - np.log(np.exp([1.2, 1.6]).sum())  # (0.6, 0.8) / 0.5
    assert float(loss) == pytest.approx(-(target * log_probs).sum(), rel=1e-5)
    entropy = -(target * np.log(target)).sum()
    assert float(metrics["teacher_perplexity"]) == pytest.approx(np.exp(entropy), rel=1e-5)


@pytest.mark.parametrize("depth,scan", [(1, False), (2, False), (2, True)])
def test_cls_only_fusion_equals_the_full_pass_first_token(depth, scan):
    # ITM reads only [CLS]; its fusion passes skip the other tokens of the last block.
    from mvl.models.fusion import CrossModalEncoder

    encoder = CrossModalEncoder(depth=depth, num_heads=2, mlp_dim=32, scan=scan)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    queries = jax.random.normal(keys[0], (3, 5, 8))
    context = jax.random.normal(keys[1], (3, 4, 8))
    context_valid = jnp.arange(4)[None] < jnp.array([4, 2, 1])[:, None]
    params = encoder.init(keys[2], queries, None, context, context_valid)

    def first_token(params, cls_only):
        out = encoder.apply(params, queries, None, context, context_valid, cls_only)
        return out[:, 0]

    trimmed, full = first_token(params, True), first_token(params, False)
    assert encoder.apply(params, queries, None, context, context_valid, True).shape == (3, 1, 8)
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    grads = [jax.grad(lambda p, c=c: first_token(p, c).sum())(params) for c in (True, False)]
    for trimmed_grad, full_grad in zip(*map(jax.tree.leaves, grads)):
        np.testing.assert_allclose(trimmed_grad, full_grad, atol=1e-5)


@pytest.mark.parametrize(
    "method, overrides, named",
    [
        ("mae", {"objectives.mim.loss": "l2"}, "objectives.mim.loss='l2' is not one of l1, mse"),
        ("mlim", {"objectives.recon.region": "edges"}, "objectives.recon.region='edges'"),
        ("maskvlm", {"objectives.mlm.encoder": "lstm"}, "objectives.mlm.encoder='lstm'"),
        ("mvp", {"objectives.features.head": "mlp"}, "objectives.features.head='mlp'"),
        ("mvp", {"mask.image.drop": "true"}, "features.head='linear' needs mask.image.drop=False"),
        ("mvp", {"teacher.kind": "none"}, "objectives.features needs teacher features"),
        ("maskvlm", {"model.pixel_decoder.num_heads": "3"}, "model.pixel_decoder.num_heads=3"),
        ("maskvlm", {"model.fusion.num_heads": "5"}, "model.fusion.num_heads=5"),
        ("mlim", {"model.image.patch_size": "6", "data.image_size": "36"}, "power-of-two"),
        (
            "clip",
            {"model.image.stem": "conv", "model.image.patch_size": "6", "data.image_size": "36"},
            "model.image.stem='conv' needs a power-of-two",
        ),
        ("clip", {"model.image.stem": "hexagons"}, "model.image.stem='hexagons'"),
    ],
)
def test_each_objective_checks_its_section_before_anything_is_built(
    tiny_config, method, overrides, named
):
    from mvl import validate
    from mvl.config import ConfigError

    cfg = tiny_config(method, **overrides)
    if named is None:
        validate.validate(cfg)
        return
    with pytest.raises(ConfigError, match=re.escape(named)):
        validate.validate(cfg)
