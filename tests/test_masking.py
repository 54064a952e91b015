"""Masking ratios are exact and the invariants hold (never pad or [CLS])."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import mask as masking
from mvl.data import special_tokens
from mvl.mask.beit import beit_block_mask
from mvl.mask.bert import bert_text_mask
from mvl.mask.block import block_patch_mask
from mvl.mask.random_patches import random_patch_mask
from mvl.mask.ranks import visible_indices
from mvl.mask.registry import IMAGE_KINDS


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.6, 0.75, 1.0])
def test_random_patch_mask_hides_exact_count(ratio):
    mask = random_patch_mask(jax.random.PRNGKey(0), 16, 64, ratio)
    np.testing.assert_array_equal(mask.sum(1), round(ratio * 64))
    assert len({tuple(row) for row in np.asarray(mask)}) > 1 or ratio in (0.0, 1.0)


def test_block_mask_hides_whole_aligned_blocks_at_the_ratio():
    grid, block = 8, 2
    mask = np.asarray(block_patch_mask(jax.random.PRNGKey(1), 32, grid, 0.6, block))
    assert mask.shape == (32, grid * grid)
    np.testing.assert_array_equal(mask.sum(1), round(0.6 * 16) * block * block)
    blocks = mask.reshape(32, grid // block, block, grid // block, block)
    per_block = blocks.sum(axis=(2, 4))
    assert set(np.unique(per_block)) <= {0, block * block}  # every block all or nothing


def test_block_mask_rejects_a_grid_the_block_does_not_divide():
    with pytest.raises(ValueError, match="not divisible"):
        block_patch_mask(jax.random.PRNGKey(0), 2, 7, 0.5, 2)


def test_bert_masking_never_touches_specials_and_hits_the_ratio():
    rng = np.random.default_rng(0)
    rows = []
    for length in rng.integers(3, 20, size=64):
        body = rng.integers(special_tokens.NUM_RESERVED, 100, size=length)
        row = [special_tokens.CLS, *body, special_tokens.EOS]
        rows.append(row + [special_tokens.PAD] * (24 - len(row)))
    ids = jnp.array(rows, jnp.int32)
    corrupted, picked = bert_text_mask(
        jax.random.PRNGKey(0), ids, 0.3, vocab_size=100, special=special_tokens.SENTENCEPIECE
    )
    ids, corrupted, picked = map(np.asarray, (ids, corrupted, picked))
    special = np.isin(ids, [special_tokens.PAD, special_tokens.CLS, special_tokens.EOS])
    assert not np.any(picked & special)
    np.testing.assert_array_equal(corrupted[~picked], ids[~picked])
    maskable = (~special).sum(1)
    np.testing.assert_array_equal(picked.sum(1), np.maximum(1, np.round(0.3 * maskable)))
    replaced = corrupted[picked]
    frac_mask = np.mean(replaced == special_tokens.MASK)
    assert 0.7 < frac_mask < 0.9  # 80% become [MASK]
    assert np.all(replaced[replaced != special_tokens.MASK] >= special_tokens.NUM_RESERVED)


@pytest.mark.parametrize(
    "cfg,grid",
    [
        ({"kind": "random", "ratio": 0.75, "block_size": 1}, 8),
        ({"kind": "random", "ratio": 0.5, "block_size": 1}, 4),
        ({"kind": "block", "ratio": 0.6, "block_size": 2}, 8),
        ({"kind": "beit", "ratio": 0.4, "min_block_patches": 4, "block_aspect": 0.3}, 8),
    ],
)
def test_dropping_keeps_exactly_the_visible_patches_in_order(cfg, grid):
    import ml_collections

    cfg = ml_collections.ConfigDict(cfg)
    kind = IMAGE_KINDS[cfg.kind]
    hidden = kind.draw(jax.random.PRNGKey(3), cfg, 16, grid, cfg.ratio)
    count = kind.hidden_count(cfg, grid)
    np.testing.assert_array_equal(hidden.sum(1), count)
    keep = np.asarray(visible_indices(hidden, count))
    assert keep.shape == (16, grid * grid - count)
    assert np.all(np.diff(keep, axis=1) > 0)  # raster order, no repeats
    np.testing.assert_array_equal(np.take_along_axis(np.asarray(hidden), keep, 1), False)
    # Scattering the kept tokens back puts each one where it came from.
    tokens = np.arange(16 * grid * grid).reshape(16, grid * grid)
    restored = np.full_like(tokens, -1)
    np.put_along_axis(restored, keep, np.take_along_axis(tokens, keep, 1), 1)
    np.testing.assert_array_equal(restored[~np.asarray(hidden)], tokens[~np.asarray(hidden)])


def test_decoder_puts_visible_tokens_back_in_raster_order_and_mask_tokens_elsewhere():
    import flax.linen as nn

    from mvl.models.decoders import InsertMaskTokens

    insert = InsertMaskTokens(num_patches=6)
    keep = jnp.array([[0, 2, 5], [1, 3, 4]])
    visible = jnp.arange(1.0, 25.0).reshape(2, 3, 4)  # distinct, non-zero rows
    params = nn.unbox(insert.init(jax.random.PRNGKey(0), visible, keep))
    full = np.asarray(insert.apply(params, visible, keep))
    token = np.asarray(params["params"]["mask_token"]).reshape(4)
    for b in range(2):
        for slot, position in enumerate(np.asarray(keep[b])):
            np.testing.assert_array_equal(full[b, position], visible[b, slot])
        for position in set(range(6)) - set(np.asarray(keep[b]).tolist()):
            np.testing.assert_array_equal(full[b, position], token)


def _mask_config(grid, **updates):
    """MLIM's demo config with 32 px images on a `grid` x `grid` patch grid and
    `updates` to its mask section."""
    from mvl import config as config_lib

    cfg = config_lib.load_config("configs/mlim.py:demo")
    cfg.unlock()
    cfg.model.image.image_size, cfg.model.image.patch_size = 32, 32 // grid
    for dotted, value in updates.items():
        section, key = dotted.split(".")
        cfg.mask[section][key] = value
    return cfg


def _text_batch(batch_size, length=24, body=20):
    row = [special_tokens.CLS] + list(range(10, 10 + body)) + [special_tokens.EOS]
    row += [special_tokens.PAD] * (length - len(row))
    return np.tile(np.array(row, np.int32), (batch_size, 1))


def _within_sampling_error(counts, probabilities, n):
    for count, p in zip(counts, probabilities):
        sigma = np.sqrt(n * p * (1 - p))
        assert abs(count - n * p) <= 4 * sigma + 1e-9, (counts, probabilities)


def test_modality_aware_masking_modes_follow_their_probabilities_and_ratios():
    probabilities = (0.5, 0.3, 0.2)
    n, grid = 4000, 8
    cfg = _mask_config(grid, **{"modality_aware.probabilities": probabilities})
    batch = {"image": np.zeros((n, 32, 32, 3)), "text": _text_batch(n)}
    special = special_tokens.SENTENCEPIECE
    masks = jax.jit(lambda rng: masking.make_masks(cfg, batch, rng, 128, special))(
        jax.random.PRNGKey(3)
    )
    mode = np.asarray(masks.mam_mode)
    _within_sampling_error(np.bincount(mode, minlength=3), probabilities, n)
    image_hidden = np.asarray(masks.image_hidden).sum(1)
    text_picked = np.asarray(masks.text_picked).sum(1)
    # image_heavy: 80% of 64 patches, intact text; text_heavy: 80% of 20 words, intact
    # image; light: 15% of each.
    expected = {0: (round(0.8 * 64), 0), 1: (0, round(0.8 * 20)), 2: (round(0.15 * 64), 3)}
    for m, (patches, words) in expected.items():
        np.testing.assert_array_equal(image_hidden[mode == m], patches)
        np.testing.assert_array_equal(text_picked[mode == m], words)
    # MLIM masks words by [MASK] replacement only (mask_prob 1).
    ids = np.asarray(masks.text_ids)
    assert np.all(ids[np.asarray(masks.text_picked)] == special_tokens.MASK)


def test_modality_dropout_modes_follow_their_probabilities():
    probabilities = (0.2, 0.3, 0.5)  # text only, image only, both
    cfg = _mask_config(4, **{"modality_dropout.probabilities": probabilities})
    n = 4000
    batch = {"image": np.zeros((n, 32, 32, 3)), "text": _text_batch(n)}
    masks = masking.make_masks(cfg, batch, jax.random.PRNGKey(4), 128, special_tokens.SENTENCEPIECE)
    keep_text, keep_image = np.asarray(masks.keep_text), np.asarray(masks.keep_image)
    assert np.all(keep_text | keep_image)  # never both dropped
    counts = [(keep_text & ~keep_image).sum(), (~keep_text & keep_image).sum()]
    counts.append((keep_text & keep_image).sum())
    _within_sampling_error(counts, probabilities, n)


def test_bad_mode_probabilities_are_named():
    cfg = _mask_config(4, **{"modality_dropout.probabilities": (0.5, 0.6, 0.0)})
    with pytest.raises(ValueError, match="mask.modality_dropout.probabilities"):
        masking.validate(cfg)


@pytest.mark.parametrize("grid, ratio, min_patches", [(14, 0.4, 16), (8, 0.4, 4)])
def test_beit_block_mask_hides_exact_count_in_rectangles(grid, ratio, min_patches):
    batch = 64
    mask = np.asarray(beit_block_mask(jax.random.PRNGKey(5), batch, grid, ratio, min_patches))
    np.testing.assert_array_equal(mask.sum(1), round(ratio * grid * grid))

    # Blocks, not scattered patches: a hidden patch's 4-neighbours are mostly hidden,
    # far more often than under random masking of the same count.
    def neighbour_agreement(m):
        m = m.reshape(-1, grid, grid)
        same = (m[:, 1:] & m[:, :-1]).sum() + (m[:, :, 1:] & m[:, :, :-1]).sum()
        return 2 * same / m.sum()

    scattered = np.asarray(random_patch_mask(jax.random.PRNGKey(5), batch, grid * grid, ratio))
    assert neighbour_agreement(mask) > 1.5 * neighbour_agreement(scattered)
    assert len({tuple(row) for row in mask}) == batch  # every example its own blocks


@pytest.mark.parametrize(
    "method, patches, kept", [("clip", "none", 0), ("flip", "drop", 8), ("maskvlm", "replace", 0)]
)
def test_masks_have_every_field_and_nothing_hidden_where_unused(tiny_config, method, patches, kept):
    cfg = tiny_config(method)
    batch = {"image": np.zeros((3, 32, 32, 3), np.float32), "text": _text_batch(3)}
    masks = masking.make_masks(cfg, batch, jax.random.PRNGKey(0), 128, special_tokens.SENTENCEPIECE)
    assert masks.patches == patches
    assert masks.image_hidden.shape == (3, 16) and masks.image_hidden.dtype == bool
    assert masks.image_keep.shape == (3, kept)
    assert masks.text_ids.shape == masks.text_picked.shape == (3, 24)
    assert masks.mam_mode.shape == masks.keep_text.shape == masks.keep_image.shape == (3,)
    assert np.all(masks.keep_text) and np.all(masks.keep_image)  # no modality dropout
    if patches == "none":
        assert not np.any(masks.image_hidden)
    if method == "clip":  # no text masking: the ids as they came, nothing scored
        np.testing.assert_array_equal(masks.text_ids, batch["text"])
        assert not np.any(masks.text_picked)
