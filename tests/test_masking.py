"""Masking ratios are exact and the invariants hold (never pad or [CLS])."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import masking
from mvl.data import special_tokens


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.6, 0.75, 1.0])
def test_random_patch_mask_hides_exact_count(ratio):
    mask = masking.random_patch_mask(jax.random.PRNGKey(0), 16, 64, ratio)
    np.testing.assert_array_equal(mask.sum(1), round(ratio * 64))
    assert len({tuple(row) for row in np.asarray(mask)}) > 1 or ratio in (0.0, 1.0)


def test_block_mask_hides_whole_aligned_blocks_at_the_ratio():
    grid, block = 8, 2
    mask = np.asarray(masking.block_patch_mask(jax.random.PRNGKey(1), 32, grid, 0.6, block))
    assert mask.shape == (32, grid * grid)
    np.testing.assert_array_equal(mask.sum(1), round(0.6 * 16) * block * block)
    blocks = mask.reshape(32, grid // block, block, grid // block, block)
    per_block = blocks.sum(axis=(2, 4))
    assert set(np.unique(per_block)) <= {0, block * block}  # every block all or nothing


def test_block_mask_rejects_a_grid_the_block_does_not_divide():
    with pytest.raises(ValueError, match="not divisible"):
        masking.block_patch_mask(jax.random.PRNGKey(0), 2, 7, 0.5, 2)


def test_bert_masking_never_touches_specials_and_hits_the_ratio():
    rng = np.random.default_rng(0)
    rows = []
    for length in rng.integers(3, 20, size=64):
        body = rng.integers(special_tokens.NUM_RESERVED, 100, size=length)
        row = [special_tokens.CLS, *body, special_tokens.EOS]
        rows.append(row + [special_tokens.PAD] * (24 - len(row)))
    ids = jnp.array(rows, jnp.int32)
    corrupted, picked = masking.bert_text_mask(jax.random.PRNGKey(0), ids, 0.3, vocab_size=100)
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
    ],
)
def test_dropping_keeps_exactly_the_visible_patches_in_order(cfg, grid):
    import ml_collections

    cfg = ml_collections.ConfigDict(cfg)
    hidden = masking.image_mask(jax.random.PRNGKey(3), cfg, 16, grid)
    count = masking.hidden_count(cfg, grid)
    np.testing.assert_array_equal(hidden.sum(1), count)
    keep = np.asarray(masking.visible_indices(hidden, count))
    assert keep.shape == (16, grid * grid - count)
    assert np.all(np.diff(keep, axis=1) > 0)  # raster order, no repeats
    np.testing.assert_array_equal(np.take_along_axis(np.asarray(hidden), keep, 1), False)
    # Scattering the kept tokens back puts each one where it came from.
    tokens = np.arange(16 * grid * grid).reshape(16, grid * grid)
    restored = np.full_like(tokens, -1)
    np.put_along_axis(restored, keep, np.take_along_axis(tokens, keep, 1), 1)
    np.testing.assert_array_equal(restored[~np.asarray(hidden)], tokens[~np.asarray(hidden)])
