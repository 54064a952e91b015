"""Training augmentation (mvl/data/augment.py): random resized crop keeps its scale and
ratio ranges, flip flips, every random choice is a function of (seed, stream position),
and the keys work through the pipeline on generated and real (file) sources."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from mvl import config as config_lib
from mvl.data import augment, pipeline, preprocess
from mvl.data.shapes import ShapesSource
from mvl.data.tokenizer import captions_from_source, train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    source = ShapesSource("train", size=500)
    return train_tokenizer(
        captions_from_source(source, 500), tmp_path_factory.mktemp("tok") / "spm.model", 120
    )


@pytest.mark.parametrize(
    "size, scale, ratio",
    [((640, 480), (0.08, 1.0), (3 / 4, 4 / 3)), ((300, 500), (0.2, 0.5), (1.0, 1.0))],
)
def test_random_resized_box_keeps_the_scale_and_ratio_ranges(size, scale, ratio):
    width, height = size
    rng = np.random.default_rng(0)
    fractions, aspects = [], []
    for _ in range(2000):
        left, top, right, bottom = augment.random_resized_box(width, height, scale, ratio, rng)
        assert 0 <= left < right <= width + 1e-9 and 0 <= top < bottom <= height + 1e-9
        fractions.append((right - left) * (bottom - top) / (width * height))
        aspects.append((right - left) / (bottom - top))
    fractions, aspects = np.array(fractions), np.array(aspects)
    assert fractions.min() >= scale[0] - 1e-9 and fractions.max() <= scale[1] + 1e-9
    assert aspects.min() >= ratio[0] - 1e-9 and aspects.max() <= ratio[1] + 1e-9
    # The range is used, not one corner of it.
    assert fractions.max() - fractions.min() > 0.5 * (scale[1] - scale[0])


def test_a_box_that_cannot_fit_falls_back_to_the_centred_box_in_range():
    rng = np.random.default_rng(0)
    # A 10:1 strip cannot hold a box of >= 90% of its area at aspect <= 4/3.
    left, top, right, bottom = augment.random_resized_box(1000, 100, (0.9, 1.0), (0.75, 4 / 3), rng)
    assert (right - left) / (bottom - top) == pytest.approx(4 / 3)
    assert bottom - top == pytest.approx(100) and left == pytest.approx((1000 - 400 / 3) / 2)


def test_the_crop_is_the_box_resized():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 255  # right half white
    left_half = augment.crop_resize(image, (0, 0, 20, 40), 16)  # 10 px from the edge
    right_half = augment.crop_resize(image, (40, 0, 60, 40), 16)
    assert left_half.shape == (16, 16, 3) and left_half.max() == 0
    assert right_half.min() == 255


def test_flip_flips_about_half_the_time_and_nothing_else():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    aug = augment.Augmentation(flip=True)
    flipped = 0
    for position in range(200):
        out = augment.geometry(image, aug, 4, augment.geometry_rng(0, position))
        if np.array_equal(out, image[:, ::-1]):
            flipped += 1
        else:
            np.testing.assert_array_equal(out, image)
    assert 70 < flipped < 130


def test_the_same_seed_and_position_give_the_same_crop_and_others_differ():
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    aug = augment.Augmentation(crop="random_resized", flip=True)

    def crop(seed, position):
        return augment.geometry(image, aug, 16, augment.geometry_rng(seed, position))

    np.testing.assert_array_equal(crop(0, 7), crop(0, 7))
    assert not np.array_equal(crop(0, 7), crop(0, 8))
    assert not np.array_equal(crop(0, 7), crop(1, 7))


def build(source, tokenizer, aug, **options):
    settings = dict(
        batch_size=4,
        max_text_len=24,
        seed=0,
        shuffle=True,
        repeat=True,
        num_threads=1,
        image_size=32,
        augment=aug,
    )
    return pipeline.make_dataset(source, tokenizer, **{**settings, **options})


def test_pipeline_crop_and_flip_resume_exactly_and_keep_labels(tokenizer):
    source = pipeline.make_source("shapes", "train", size=64, seed=0, image_size=32)
    aug = augment.Augmentation(crop="random_resized", scale=(0.3, 1.0), flip=True)
    plain = next(iter(build(source, tokenizer, False)))
    dataset = build(source, tokenizer, aug)
    it = iter(dataset)
    first = next(it)
    assert first["image"].shape == (4, 32, 32, 3) and first["image"].dtype == np.float32
    for key in ("text", "shape", "colour"):
        np.testing.assert_array_equal(first[key], plain[key])
    assert not np.allclose(first["image"], plain["image"])
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    resumed = iter(dataset)
    resumed.set_state(state)
    for want, got in zip(expected, [next(resumed) for _ in range(2)]):
        np.testing.assert_array_equal(want["image"], got["image"])


def test_the_jitter_draws_what_it_drew_before_and_independently_of_the_flip(tokenizer):
    """The crop / flip stream must not change the jitter's draws (the demos use it)."""
    example = {"image": ShapesSource("train", size=8, image_size=32)[3]["image"], "caption": "a"}
    image = np.asarray(example["image"], np.float32) * np.float32(1 / 255)
    jitter_only = preprocess.make_preprocess(tokenizer, 24, 0, True, 32)((5, example))["image"]
    before = augment.jitter(image, np.random.default_rng([0, 5]))  # the pre-crop formula
    np.testing.assert_array_equal(jitter_only, before)
    aug = augment.Augmentation(flip=True, jitter=True)
    outputs = [
        preprocess.make_preprocess(tokenizer, 24, 0, aug, 32)((p, example))["image"]
        for p in range(5, 25)
    ]
    for position, out in zip(range(5, 25), outputs):
        alone = augment.jitter(image, np.random.default_rng([0, position]))
        assert np.allclose(out, alone, atol=1e-6) or np.allclose(out, alone[:, ::-1], atol=1e-6)


def write_table(root, sizes) -> str:
    rows = []
    for i, (width, height) in enumerate(sizes):
        pixels = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
        path = os.path.join(root, f"{i}.png")
        Image.fromarray(pixels).save(path)
        rows.append({"filepath": f"{i}.png", "title": f"a picture number {i}"})
    table = os.path.join(root, "pairs.csv")
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, ["filepath", "title"])
        writer.writeheader()
        writer.writerows(rows)
    return "csv:" + table


def test_a_real_source_is_decoded_whole_for_the_crop_and_centre_cropped_for_eval(
    tmp_path, tokenizer
):
    spec = write_table(str(tmp_path), [(80, 48), (40, 90), (64, 64), (100, 30)] * 3)
    cfg = config_lib.base_config("demo")
    cfg.data.update(source=spec, eval_size=4, image_size=32, crop="random_resized", flip=True)
    train = pipeline.source_for_config(cfg.data, "train", seed=0)
    held_out = pipeline.source_for_config(cfg.data, "val", seed=0)
    assert train[0]["image"].shape == (48, 80, 3)  # whole image: the crop comes later
    assert held_out[0]["image"].shape == (32, 32, 3)  # centre crop at image_size
    aug = augment.Augmentation.from_config(cfg.data)
    batch = next(iter(build(train, tokenizer, aug, batch_size=8)))
    assert batch["image"].shape == (8, 32, 32, 3) and batch["skipped_before"].sum() == 0
    cfg.data.crop = "centre"
    assert pipeline.source_for_config(cfg.data, "train", seed=0)[0]["image"].shape == (32, 32, 3)
