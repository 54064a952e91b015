"""The embedded shapes dataset: determinism, splits, labels vs caption vs pixels."""

import hashlib
import re

import numpy as np
import pytest

from mvl.data import shapes, shapes_render, shapes_scene
from mvl.data.shapes import ShapesSource
from mvl.data.shapes_render import RGB
from mvl.data.shapes_scene import COLOURS, POSITION_PHRASES, SHAPES

NUM_CHECKED = 300


def image_hash(image: np.ndarray) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


def pixels_near(image: np.ndarray, colour: int, max_distance: float = 40.0) -> np.ndarray:
    """Boolean [H, W]: pixels within max_distance (RGB euclidean) of COLOURS[colour]."""
    return np.linalg.norm(image.astype(np.float32) - RGB[colour], axis=-1) < max_distance


@pytest.fixture(scope="module")
def train_examples():
    source = ShapesSource("train", size=NUM_CHECKED, seed=0)
    return [source[i] for i in range(NUM_CHECKED)]


def test_same_seed_split_index_gives_identical_example():
    a, b = ShapesSource("train", 50, seed=3)[17], ShapesSource("train", 50, seed=3)[17]
    np.testing.assert_array_equal(a["image"], b["image"])
    labels = ("caption", "shape", "colour", "num_objects")
    assert [a[k] for k in labels] == [b[k] for k in labels]


def test_other_index_or_seed_gives_other_example():
    source = ShapesSource("train", 50, seed=3)
    assert image_hash(source[17]["image"]) != image_hash(source[18]["image"])
    other_seed = ShapesSource("train", 50, seed=4)[17]
    assert image_hash(source[17]["image"]) != image_hash(other_seed["image"])


def test_caption_method_matches_getitem():
    source = ShapesSource("test", 20, seed=1)
    assert [source.caption(i) for i in range(20)] == [source[i]["caption"] for i in range(20)]


def test_splits_share_no_images():
    hashes = {
        split: {
            image_hash(ShapesSource(split, NUM_CHECKED, seed=0, image_size=32)[i]["image"])
            for i in range(NUM_CHECKED)
        }
        for split in ("train", "val", "test")
    }
    assert all(len(h) == NUM_CHECKED for h in hashes.values())  # no duplicates inside a split
    assert not hashes["train"] & hashes["val"]
    assert not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]


@pytest.mark.parametrize("image_size", [32, 96])
def test_image_shape_and_dtype(image_size):
    example = ShapesSource("val", 5, image_size=image_size)[4]
    assert example["image"].shape == (image_size, image_size, 3)
    assert example["image"].dtype == np.uint8
    assert example["image"].std() > 5  # not blank


def test_caption_does_not_depend_on_image_size():
    small, large = (
        ShapesSource("train", 10, image_size=32),
        ShapesSource("train", 10, image_size=96),
    )
    assert [small.caption(i) for i in range(10)] == [large.caption(i) for i in range(10)]


def test_caption_words_match_labels(train_examples):
    for ex in train_examples:
        caption = ex["caption"]
        assert re.fullmatch(r"[a-z]+(,? [a-z]+)*", caption), caption
        words = caption.replace(",", "").split()
        assert words.count("large") == 1, caption
        assert f"large {COLOURS[ex['colour']]} {SHAPES[ex['shape']]}" in caption, caption
        assert words.count("small") == ex["num_objects"] - 1, caption


def test_object_counts_cover_one_to_three(train_examples):
    counts = {ex["num_objects"] for ex in train_examples}
    assert counts == {1, 2, 3}
    labels = {(ex["shape"], ex["colour"]) for ex in train_examples}
    assert len(labels) > 30  # most of the 48 shape x colour pairs appear


def test_caption_templates_vary(train_examples):
    openings = {" ".join(ex["caption"].split()[:2]) for ex in train_examples}
    assert len(openings) >= 8
    assert any(" it" in ex["caption"] for ex in train_examples)  # relations are used


def test_main_colour_is_in_image_and_absent_colours_are_not(train_examples):
    for ex in train_examples:
        assert pixels_near(ex["image"], ex["colour"]).sum() >= 100, ex["caption"]
        for colour, name in enumerate(COLOURS):
            if name not in ex["caption"].split():
                assert pixels_near(ex["image"], colour).sum() < 10, (name, ex["caption"])


def test_single_object_position_matches_caption(train_examples):
    singles = [ex for ex in train_examples if ex["num_objects"] == 1]
    assert len(singles) > 50
    for ex in singles:
        (cell,) = [i for i, phrase in enumerate(POSITION_PHRASES) if phrase in ex["caption"]]
        ys, xs = np.nonzero(pixels_near(ex["image"], ex["colour"]))
        size = ex["image"].shape[0]
        assert (int(ys.mean() * 3 // size), int(xs.mean() * 3 // size)) == divmod(cell, 3), ex[
            "caption"
        ]


def test_large_object_is_clearly_larger_than_small_ones():
    source = ShapesSource("train", 200)
    for i in range(200):
        ex = source[i]
        colours_in_caption = [COLOURS.index(w) for w in ex["caption"].split() if w in COLOURS]
        if ex["num_objects"] == 2 and colours_in_caption.count(ex["colour"]) == 1:
            small_colour = next(c for c in colours_in_caption if c != ex["colour"])
            large_area = pixels_near(ex["image"], ex["colour"]).sum()
            assert large_area > 2 * pixels_near(ex["image"], small_colour).sum(), ex["caption"]


def test_relation_words():
    anchor = shapes_scene.SceneObject(shape=0, colour=0, cell=4, large=True)
    below = shapes_scene.SceneObject(shape=1, colour=1, cell=7, large=False)
    left = shapes_scene.SceneObject(shape=1, colour=1, cell=3, large=False)
    diagonal = shapes_scene.SceneObject(shape=1, colour=1, cell=0, large=False)
    assert shapes_scene.relation(below, anchor) == "below it"
    assert shapes_scene.relation(anchor, below) == "above it"
    assert shapes_scene.relation(left, anchor) == "to the left of it"
    assert shapes_scene.relation(anchor, left) == "to the right of it"
    assert shapes_scene.relation(diagonal, anchor) is None


def test_objects_stay_inside_image():
    rng = np.random.default_rng(0)
    for size in (32, 64):
        for cell in range(9):
            obj = shapes_scene.SceneObject(shape=3, colour=0, cell=cell, large=True)
            cy, cx, r = shapes_render.place(obj, size, rng)
            reach = shapes_render.MAX_EXTENT * r
            assert reach <= cy <= size - reach and reach <= cx <= size - reach


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown shapes split 'dev'"):
        ShapesSource("dev")
    with pytest.raises(IndexError, match="index 10 out of range for size 10"):
        ShapesSource("train", 10)[10]
    with pytest.raises(ValueError, match="unknown shapes task"):
        shapes.class_names("size")


def test_zeroshot_helpers():
    assert shapes.class_names("shape") == SHAPES
    assert shapes.class_names("colour") == COLOURS
    for task in ("shape", "colour"):
        prompts = shapes.zeroshot_prompts(task)
        assert len(prompts) >= 3 and all(p.count("{}") == 1 for p in prompts)


def test_repr_names_the_configuration():
    assert repr(ShapesSource("val", 7, seed=2, image_size=48)) == (
        "ShapesSource(split='val', size=7, seed=2, image_size=48, omit_prob=0.0)"
    )


def test_captions_sometimes_omit_colour_shape_or_position_but_never_the_object():
    full = ShapesSource("train", size=400, seed=0, omit_prob=0.0)
    partial = ShapesSource("train", size=400, seed=0, omit_prob=0.2)
    captions = [partial.caption(i) for i in range(400)]
    for i in (0, 7, 99):  # omissions never change the picture
        np.testing.assert_array_equal(full[i]["image"], partial[i]["image"])
    no_colour = no_shape = no_position = 0
    for i, caption in enumerate(captions):
        words = caption.replace(",", "").split()
        assert words.count("large") == 1, caption  # every object is still named
        assert words.count("small") == full[i]["num_objects"] - 1, caption
        phrase = caption.split("large ")[1]
        main_colour = COLOURS[full[i]["colour"]]
        no_colour += not phrase.startswith(main_colour)
        no_shape += phrase.startswith(f"{main_colour} shape")
        no_position += not any(p in caption for p in POSITION_PHRASES) and " it" not in caption
        assert not phrase.startswith("shape"), caption  # never both colour and shape
    assert 0.12 < no_colour / 400 < 0.28  # 0.2
    assert 0.1 < no_shape / 400 < 0.25  # 0.8 * 0.2 = 0.16
    assert no_position > 0
