"""Fault injection: runs killed, stopped and damaged at random steps end exactly like an
uninterrupted run; broken samples are skipped and counted, exactly.

The longer command with more trials and wall-clock kills: python -m tests.fault_trials
"""

import glob
import os

import grain
import jax
import numpy as np
import pytest

from mvl.data import pipeline, preprocess
from mvl.data.bad_sample import BadSample
from mvl.data.shapes import ShapesSource
from mvl.runtime.errors import UserError
from mvl.train.loop import Trainer
from tests import fault_trials


@pytest.mark.slow(minutes=4.5)
def test_three_interruptions_end_exactly_like_an_uninterrupted_run(tokenizer_path, tmp_path):
    cache = jax.config.jax_compilation_cache_dir
    reference = fault_trials.Reference(tokenizer_path, str(tmp_path / "reference"), cache)
    seed = int(np.random.default_rng().integers(1 << 16))
    rng = np.random.default_rng(seed)
    every = fault_trials.CHECKPOINT_EVERY
    first = int(rng.integers(1, 8))  # some step of the first stretch
    saving = (first // every + 1) * every  # the next checkpoint step after it: 3, 6 or 9
    third = int(rng.integers(saving + 1, fault_trials.STEPS))
    plan = [
        ("kill_after_step", first, False),
        # killed mid-write, then the newest complete checkpoint is damaged as well
        ("kill_while_saving", saving, True),
        ("term_after_step", third, False),
    ]
    workdir = str(tmp_path / "trial")
    trial = fault_trials.run_trial(seed, tokenizer_path, workdir, cache, reference, plan)
    report = f"seed {seed}, plan {plan}: {fault_trials.describe(trial)}"
    assert trial.survived, report
    for interruption in trial.interruptions:  # every one happened, as planned
        assert interruption.happened, report
        # lost work: the steps since the newest intact checkpoint, no more
        assert (interruption.resumed_from or 0) == (interruption.intact_expected or 0), report
    # A damaged checkpoint was set aside, not deleted; no unfinished save is left over.
    if trial.interruptions[1].damaged is not None:
        assert os.listdir(os.path.join(workdir, "unreadable_checkpoints")), report
    assert not glob.glob(os.path.join(workdir, "checkpoints", "*tmp*")), report


class BrokenShapes:
    """`shapes` with a broken sample at every index in `broken` (each kind of fault)."""

    KINDS = ("unreadable", "wrong_size", "grey", "nan", "empty_caption", "not_utf8")

    def __init__(self, size: int, broken: set[int]):
        self.shapes = ShapesSource(split="train", size=size, seed=0, image_size=32)
        self.broken = broken

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, index):
        example = dict(self.shapes[index])
        if index not in self.broken:
            return example
        kind = self.KINDS[index % len(self.KINDS)]
        if kind == "unreadable":
            raise OSError(f"truncated file for sample {index}")
        if kind == "wrong_size":
            example["image"] = example["image"][:16]
        if kind == "grey":
            example["image"] = example["image"][..., 0]
        if kind == "nan":
            example["image"] = np.full((32, 32, 3), np.nan, np.float32)
        if kind == "empty_caption":
            example["caption"] = "  "
        if kind == "not_utf8":
            example["caption"] = b"\xff\xfe broken"
        return example


def skipped_before_nth_good(size: int, broken: set[int], seed: int, good: int) -> int:
    """How many broken samples precede the `good`-th usable one in the shuffled stream."""
    order = grain.MapDataset.range(size).shuffle(seed=seed).repeat(None)
    found = skipped = position = 0
    while found < good:
        if order[position] in broken:
            skipped += 1
        else:
            found += 1
        position += 1
    return skipped


def broken_dataset(source, tokenizer_path, **options):
    from mvl.data.tokenizer import Tokenizer

    settings = dict(batch_size=8, max_text_len=24, seed=0, image_size=32, **options)
    return pipeline.make_dataset(source, Tokenizer(tokenizer_path), **settings)


def test_every_broken_sample_is_skipped_and_counted(tokenizer_path):
    broken = {3, 10, 17, 24, 31, 38, 45, 50}  # every kind of fault, some more than once
    source = BrokenShapes(64, broken)
    dataset = broken_dataset(
        source, tokenizer_path, shuffle=True, repeat=False, drop_remainder=False
    )
    batches = list(dataset)
    assert sum(len(b["image"]) for b in batches) == 64 - len(broken)
    assert sum(int(b["skipped_before"].sum()) for b in batches) == len(broken)
    assert all(np.isfinite(b["image"]).all() for b in batches)


def test_training_counts_broken_samples_in_its_metrics(tiny_config, tmp_path, monkeypatch):
    size, broken = 96, {1, 7, 8, 9, 40, 41, 77, 90, 95}
    monkeypatch.setitem(
        pipeline.SOURCES,
        "broken_shapes",
        lambda split, n, seed, image_size: BrokenShapes(
            size if split == "train" else n, broken if split == "train" else set()
        ),
    )
    trainer = Trainer(tiny_config("clip", **{"data.source": "broken_shapes"}), str(tmp_path))
    steps = 9  # 144 usable samples: into the second epoch
    counted = sum(
        float(trainer.step(trainer.next_batch())["data/skipped_samples"]) for _ in range(steps)
    )
    batch = trainer.cfg.batch_size
    assert counted == skipped_before_nth_good(size, broken, trainer.cfg.seed, steps * batch)


def test_a_source_of_nothing_but_junk_stops_with_the_last_reason(tokenizer_path):
    junk = BrokenShapes(64, set(range(64)))
    dataset = broken_dataset(
        junk, tokenizer_path, shuffle=False, repeat=True, max_skipped_in_a_row=50
    )
    with pytest.raises(UserError, match=r"50 samples in a row could not be used .* sample \d+"):
        next(iter(dataset))


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("wrong_size", r"image of shape \(16, 32, 3\), expected \(32, 32, 3\)"),
        ("grey", r"image of shape \(32, 32\)"),
        ("nan", "NaN or infinite pixels"),
        ("empty_caption", "caption is empty"),
        ("not_utf8", "caption is not UTF-8"),
    ],
)
def test_each_fault_is_named(kind, reason):
    index = BrokenShapes.KINDS.index(kind)
    example = BrokenShapes(8, {index})[index]
    with pytest.raises(BadSample, match=reason):
        preprocess.check_example(example, 32)
