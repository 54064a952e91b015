"""grain pipeline: batch layout, determinism, iterator checkpoints (plain and orbax), sharding."""

import hashlib

import grain
import numpy as np
import pytest

from mvl.data.bad_sample import SKIP_KINDS
from mvl.data.pipeline import make_dataset, make_source
from mvl.data.shapes import ShapesSource
from mvl.data.tokenizer import captions_from_source, train_tokenizer

MAX_TEXT_LEN = 40


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    source = ShapesSource("train", size=1000)
    return train_tokenizer(
        captions_from_source(source, 1000),
        tmp_path_factory.mktemp("tok") / "spm.model",
        vocab_size=200,
    )


@pytest.fixture(scope="module")
def source():
    return make_source("shapes", "train", size=500, seed=0, image_size=32)


def build(source, tokenizer, **overrides):
    options = dict(
        batch_size=8, max_text_len=MAX_TEXT_LEN, seed=0, shuffle=True, repeat=True, num_threads=2
    )
    return make_dataset(source, tokenizer, **{**options, **overrides})


def assert_batches_equal(expected, actual):
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def image_hash(image: np.ndarray) -> str:
    """Hash of an image as uint8, so a preprocessed float image matches its source."""
    as_uint8 = np.round(np.asarray(image, np.float32) * (255 if image.dtype != np.uint8 else 1))
    return hashlib.sha1(as_uint8.astype(np.uint8).tobytes()).hexdigest()


def example_hashes(batches) -> list[str]:
    return [image_hash(image) for b in batches for image in b["image"]]


def test_make_source_registry():
    assert isinstance(make_source("shapes", "val", size=3, seed=1, image_size=32), ShapesSource)
    with pytest.raises(ValueError, match=r"unknown data source 'coco'; known: \['shapes'\]"):
        make_source("coco", "train", size=3, seed=0, image_size=32)


def test_batch_structure(source, tokenizer):
    batch = next(iter(build(source, tokenizer)))
    keys = {"image", "text", "shape", "colour", "skipped_before", "skipped_kinds"}
    assert set(batch) == keys  # no strings
    assert (batch["skipped_before"] == 0).all()  # nothing broken in `shapes`
    assert batch["skipped_kinds"].shape == (8, len(SKIP_KINDS)) and not batch["skipped_kinds"].any()
    assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.float32
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert batch["image"].max() > 0.5  # scaled from uint8, not left at 0..255 or squashed
    assert batch["text"].shape == (8, MAX_TEXT_LEN) and batch["text"].dtype == np.int32
    assert (batch["text"][:, 0] == tokenizer.cls_id).all()
    for key in ("shape", "colour"):
        assert batch[key].shape == (8,) and batch[key].dtype == np.int32


def test_text_and_labels_belong_to_the_same_example(source, tokenizer):
    batch = next(iter(build(source, tokenizer, shuffle=False, repeat=False)))
    for i in range(8):
        example = source[i]
        assert tokenizer.decode(batch["text"][i]) == example["caption"]
        assert (batch["shape"][i], batch["colour"][i]) == (example["shape"], example["colour"])
        np.testing.assert_allclose(batch["image"][i], example["image"] / 255, atol=1e-6)


def test_identically_built_datasets_give_identical_batches(source, tokenizer):
    first = [b for _, b in zip(range(4), build(source, tokenizer, augment=True))]
    second = [b for _, b in zip(range(4), build(source, tokenizer, augment=True))]
    assert_batches_equal(first, second)
    other_seed = [b for _, b in zip(range(4), build(source, tokenizer, augment=True, seed=1))]
    assert example_hashes(first) != example_hashes(other_seed)


def test_shuffle_reshuffles_each_epoch(tokenizer):
    tiny = ShapesSource("train", size=16, image_size=16)
    batches = [b for _, b in zip(range(4), build(tiny, tokenizer))]  # two epochs
    hashes = example_hashes(batches)
    assert sorted(hashes[:16]) == sorted(hashes[16:])  # each epoch is a permutation
    assert hashes[:16] != hashes[16:]


def test_augment_changes_pixels_but_not_labels(source, tokenizer):
    plain = next(iter(build(source, tokenizer)))
    augmented = next(iter(build(source, tokenizer, augment=True)))
    assert_batches_equal(
        [{k: plain[k] for k in ("text", "shape", "colour")}],
        [{k: augmented[k] for k in ("text", "shape", "colour")}],
    )
    assert not np.allclose(plain["image"], augmented["image"])
    assert 0.0 <= augmented["image"].min() and augmented["image"].max() <= 1.0


def test_iterator_state_restores_exact_order(source, tokenizer):
    dataset = build(source, tokenizer, augment=True)
    it = iter(dataset)
    for _ in range(3):
        next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(2)]
    fresh = iter(dataset)
    fresh.set_state(state)
    assert_batches_equal(expected, [next(fresh) for _ in range(2)])


def test_orbax_checkpoint_manager_saves_and_restores_iterator(source, tokenizer, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    jnp = pytest.importorskip("jax.numpy")
    dataset = build(source, tokenizer)
    it = iter(dataset)
    for _ in range(3):
        next(it)
    # The train loop's pattern: model state and data iterator in one step directory.
    state = {"w": jnp.arange(4.0), "step": jnp.asarray(3, jnp.int32)}
    mngr = ocp.CheckpointManager(tmp_path / "ckpt", item_names=("state", "data"))
    mngr.save(
        3,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(it)
        ),
    )
    # The iterator's state is written before save() returns, so advancing it
    # while the async save finishes must not change what was saved.
    expected = [next(it) for _ in range(2)]
    mngr.wait_until_finished()
    mngr.close()

    restore_mngr = ocp.CheckpointManager(tmp_path / "ckpt", item_names=("state", "data"))
    fresh = iter(dataset)
    restored = restore_mngr.restore(
        restore_mngr.latest_step(),
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(state), data=grain.checkpoint.CheckpointRestore(fresh)
        ),
    )
    restore_mngr.close()
    assert restored.data is fresh
    np.testing.assert_array_equal(restored.state["w"], state["w"])
    assert_batches_equal(expected, [next(fresh) for _ in range(2)])


def test_process_shards_are_disjoint_and_cover_the_source(tokenizer):
    # 21 examples in global batches of 2 x 4: two full (4 + 4 rows each), then 5 left,
    # 4 for process 0 and 1 for process 1.
    finite = ShapesSource("val", size=21, image_size=16)
    shards = [
        example_hashes(
            build(
                finite,
                tokenizer,
                batch_size=4,
                repeat=False,
                drop_remainder=False,
                process_index=index,
                process_count=2,
            )
        )
        for index in range(2)
    ]
    assert list(map(len, shards)) == [12, 9]
    assert not set(shards[0]) & set(shards[1])
    all_images = {image_hash(finite[i]["image"]) for i in range(len(finite))}
    assert set(shards[0]) | set(shards[1]) == all_images


def test_global_batches_do_not_depend_on_the_number_of_processes(source, tokenizer):
    # Each process reads its rows of every global batch; the rows of processes 0 and 1
    # together are the batch one process with twice the rows reads (augmentation too).
    one = iter(build(source, tokenizer, batch_size=8, augment=True))
    two = [
        iter(build(source, tokenizer, batch_size=4, augment=True, process_index=i, process_count=2))
        for i in range(2)
    ]
    for _ in range(3):
        whole, halves = next(one), [next(it) for it in two]
        for key in whole:
            np.testing.assert_array_equal(
                whole[key], np.concatenate([h[key] for h in halves]), err_msg=key
            )


def test_finite_dataset_drops_remainder_by_default(tokenizer):
    finite = ShapesSource("val", size=21, image_size=16)
    batches = list(build(finite, tokenizer, batch_size=4, repeat=False))
    assert len(batches) == 5 and all(len(b["shape"]) == 4 for b in batches)


def test_bad_process_index_raises(source, tokenizer):
    with pytest.raises(ValueError, match="process_index 2 not in"):
        build(source, tokenizer, process_index=2, process_count=2)


def test_worker_processes_give_checkpointable_batches(source, tokenizer):
    dataset = build(source, tokenizer, num_workers=2)
    it = iter(dataset)
    fresh = iter(dataset)
    try:
        first = next(it)
        assert first["image"].shape == (8, 32, 32, 3)
        state = it.get_state()
        expected = [next(it) for _ in range(2)]
        fresh.set_state(state)
        assert_batches_equal(expected, [next(fresh) for _ in range(2)])
    finally:
        it.close()
        fresh.close()
