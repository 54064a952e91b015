"""Image positions (learned | fixed 2-D sin-cos) and the pixel decoder's [CLS] (MAE)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mvl import validate
from mvl.config import ConfigError
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models import positions, transformer
from mvl.models.decoders import TokenDecoder
from mvl.models.model import build_model
from mvl.models.vision import VisionTower
from mvl.train.state import init_params

MAE_WAY = {
    "model.image.positions": "sincos2d",
    "model.pixel_decoder.positions": "sincos2d",
    "model.pixel_decoder.keep_cls": "True",
}


def test_sincos_table_on_a_two_by_two_grid_is_the_formula():
    """Width 8: 4 channels per axis, frequencies 1 and 1/100; column first, then row."""
    table = positions.sincos_2d(grid=2, width=8)

    def axis(p):
        return [np.sin(p), np.sin(p / 100), np.cos(p), np.cos(p / 100)]

    # raster order: patch (row, column) = (0, 0), (0, 1), (1, 0), (1, 1)
    expected = [axis(col) + axis(row) for row in (0, 1) for col in (0, 1)]
    np.testing.assert_allclose(table, np.asarray(expected, np.float32), rtol=1e-6, atol=1e-7)


def test_sincos_table_needs_a_width_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        positions.sincos_2d(grid=2, width=6)


def param_paths(cfg) -> dict[str, tuple]:
    model = build_model(cfg, 128, SENTENCEPIECE)
    params = nn.unbox(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))
    return {
        "/".join(str(key.key) for key in keys): tuple(leaf.shape)
        for keys, leaf in jax.tree_util.tree_leaves_with_path(params)
    }


def test_sincos_positions_are_not_parameters(tiny_config):
    learned = param_paths(tiny_config("mae"))
    assert learned["image/pos_embedding"] == (1, 16, 32)  # 32 px / 8 px patches: 4 x 4
    assert learned["pixel_decoder/pos_embedding"] == (1, 16, 32)
    fixed = param_paths(tiny_config("mae", **MAE_WAY))
    assert not [path for path in fixed if "pos_embedding" in path]
    assert set(learned) - set(fixed) == {"image/pos_embedding", "pixel_decoder/pos_embedding"}


def test_keep_cls_carries_the_cls_token_through_the_mim_decoder(tiny_config):
    """With learned positions the decoder's table then covers [CLS] + the 16 patches."""
    paths = param_paths(tiny_config("mae", **{"model.pixel_decoder.keep_cls": "True"}))
    assert paths["pixel_decoder/pos_embedding"] == (1, 17, 32)


def decoder(keep_cls: bool, insert: bool = True):
    return TokenDecoder(
        out_dim=5,
        width=8,
        depth=1,
        num_heads=2,
        mlp_dim=16,
        insert_mask_tokens=insert,
        num_patches=16,
        positions="sincos2d",
        keep_cls=keep_cls,
    )


def test_keep_cls_changes_the_patch_predictions_and_keeps_their_shape():
    tokens = jax.random.normal(jax.random.PRNGKey(0), (2, 1 + 4, 12))  # [CLS] + 4 kept
    keep_idx = jnp.array([[0, 5, 6, 15], [1, 2, 9, 12]])
    with_cls, without_cls = decoder(True), decoder(False)
    # both layouts have the same parameters (sincos: no table whose length differs)
    params = with_cls.init(jax.random.PRNGKey(1), tokens, keep_idx=keep_idx)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, without_cls.init(jax.random.PRNGKey(1), tokens[:, 1:], keep_idx=keep_idx)
    )
    out_with = with_cls.apply(params, tokens, keep_idx=keep_idx)
    out_without = without_cls.apply(params, tokens[:, 1:], keep_idx=keep_idx)
    assert out_with.shape == out_without.shape == (2, 16, 5)
    assert not np.allclose(out_with, out_without, atol=1e-4)
    # the [CLS] is attended to: changing it alone changes every patch's prediction
    other_cls = tokens.at[:, 0].set(tokens[:, 0] + 1.0)
    out_other = with_cls.apply(params, other_cls, keep_idx=keep_idx)
    assert np.abs(np.asarray(out_other - out_with)).max(axis=-1).min() > 0


def encoder_input(tower, params, images, keep_idx=None):
    """The tokens entering the encoder's blocks ([CLS] first), recorded on the way in."""
    seen = []

    def record(next_fun, args, kwargs, context):
        if (
            isinstance(context.module, transformer.Transformer)
            and context.method_name == "__call__"
        ):
            seen.append(args[0])
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        tower.apply(params, images, keep_idx=keep_idx)
    return np.asarray(seen[0])


def test_dropped_patches_keep_their_own_grid_positions():
    tower = VisionTower(
        image_size=16, patch_size=4, width=8, depth=1, num_heads=2, mlp_dim=16,
        positions="sincos2d",
    )  # fmt: skip
    keep_idx = jnp.array([[3, 0, 9, 14], [15, 7, 1, 2]])
    # images equal to the pixel mean embed to zeros at init: what enters is the position
    blank = jnp.full((2, 16, 16, 3), 0.5)
    params = tower.init(jax.random.PRNGKey(0), blank)
    tokens = encoder_input(tower, params, blank, keep_idx)
    table = positions.sincos_2d(grid=4, width=8)
    np.testing.assert_allclose(tokens[:, 0], 0.0)  # [CLS]: zero token, position zero
    np.testing.assert_allclose(tokens[:, 1:], table[np.asarray(keep_idx)], atol=1e-6)
    # with content, kept token i is the full sequence's patch keep_idx[i]
    images = jax.random.uniform(jax.random.PRNGKey(1), (2, 16, 16, 3))
    full = encoder_input(tower, params, images)
    kept = encoder_input(tower, params, images, keep_idx)
    gathered = np.take_along_axis(full[:, 1:], np.asarray(keep_idx)[..., None], axis=1)
    np.testing.assert_allclose(kept[:, 1:], gathered, atol=1e-6)


@pytest.mark.parametrize("kind", ["learned", "sincos2d"])
def test_a_smaller_image_reads_the_table_resized_to_its_grid(kind):
    """A 16 px tower (4 x 4 grid) given 8 px crops (2 x 2): each patch's position is the
    table resized bilinearly to the crop's grid; the parameters keep the 4 x 4 table."""
    tower = VisionTower(
        image_size=16, patch_size=4, width=8, depth=1, num_heads=2, mlp_dim=16, positions=kind
    )
    params = tower.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    if kind == "learned":
        table = np.asarray(nn.unbox(params)["params"]["pos_embedding"])[0]
        assert table.shape == (16, 8)
    else:
        table = positions.sincos_2d(grid=4, width=8)
    expected = jax.image.resize(table.reshape(4, 4, 8), (2, 2, 8), "linear", antialias=True)
    blank = jnp.full((2, 8, 8, 3), 0.5)  # embeds to zeros at init: what enters is position
    tokens = encoder_input(tower, params, blank)
    assert tokens.shape == (2, 5, 8)
    np.testing.assert_allclose(
        tokens[:, 1:], np.broadcast_to(expected.reshape(4, 8), (2, 4, 8)), atol=1e-6
    )
    # not a crop of the table: every resized row mixes several of the table's rows
    assert not any(np.allclose(tokens[0, 1], row, atol=1e-4) for row in table)
    # the image's own size reads the table as it is
    np.testing.assert_allclose(
        encoder_input(tower, params, jnp.full((1, 16, 16, 3), 0.5))[0, 1:], table, atol=1e-6
    )


@pytest.mark.parametrize("section", ["image", "pixel_decoder"])
def test_a_width_not_divisible_by_four_is_a_config_error(tiny_config, section):
    cfg = tiny_config(
        "mae", **{f"model.{section}.positions": "sincos2d", f"model.{section}.width": "34"}
    )
    with pytest.raises(ConfigError, match=rf"model\.{section}\.positions.*divisible by 4"):
        validate.validate(cfg, num_devices=1)


def test_an_unknown_positions_kind_is_a_config_error(tiny_config):
    cfg = tiny_config("mae", **{"model.image.positions": "rope"})
    with pytest.raises(ConfigError, match=r"model\.image\.positions.*learned, sincos2d"):
        validate.validate(cfg, num_devices=1)


def test_mae_and_flip_paper_use_fixed_positions_and_demos_keep_learned(tiny_config):
    from mvl import config as config_lib

    mae = config_lib.load_config("configs/mae.py:paper")
    assert mae.model.image.positions == mae.model.pixel_decoder.positions == "sincos2d"
    assert mae.model.pixel_decoder.keep_cls
    assert config_lib.load_config("configs/flip.py:paper").model.image.positions == "sincos2d"
    for method in ("mae", "flip"):
        demo = config_lib.load_config(f"configs/{method}.py:demo")
        assert demo.model.image.positions == "learned"
    assert not config_lib.load_config("configs/mae.py:demo").model.pixel_decoder.keep_cls


def test_a_mae_way_tiny_model_trains_a_step(tiny_config, tmp_path):
    """The whole MIM path with fixed positions and the decoder's [CLS]: a finite loss."""
    from mvl.train.loop import Trainer

    cfg = tiny_config("mae", **MAE_WAY)
    trainer = Trainer(cfg, str(tmp_path))
    loss = float(jax.device_get(trainer.step(trainer.next_batch()))["loss"])
    assert np.isfinite(loss) and loss > 0
