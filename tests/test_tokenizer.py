"""sentencepiece tokenizer: special ids, round trips, padding/truncation, caching, CLI."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from mvl.data.shapes import ShapesSource
from mvl.data.tokenizer import Tokenizer, captions_from_source, ensure_tokenizer, train_tokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def captions():
    return list(captions_from_source(ShapesSource("train", size=2000, seed=0), 2000))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, captions):
    return train_tokenizer(
        captions, tmp_path_factory.mktemp("tok") / "sub" / "spm.model", vocab_size=256
    )


def test_captions_from_source_takes_the_first_num():
    source = ShapesSource("val", size=30)
    assert list(captions_from_source(source, 5)) == [source[i]["caption"] for i in range(5)]
    assert len(list(captions_from_source(source, 100))) == 30


def test_special_ids(tokenizer):
    assert (
        tokenizer.pad_id,
        tokenizer.unk_id,
        tokenizer.bos_id,
        tokenizer.eos_id,
        tokenizer.mask_id,
        tokenizer.cls_id,
    ) == (0, 1, 2, 3, 4, 5)
    assert 64 < tokenizer.vocab_size <= 256


def test_round_trip_and_layout(tokenizer, captions):
    ids = tokenizer.encode(captions[:200], max_len=48)
    assert ids.shape == (200, 48) and ids.dtype == np.int32
    for caption, row in zip(captions, ids):
        length = int((row != 0).sum())
        assert row[0] == tokenizer.cls_id and row[length - 1] == tokenizer.eos_id
        assert (row[length:] == 0).all() and not np.isin(
            row[1 : length - 1], [0, 1, 2, 3, 4, 5]
        ).any()
        assert tokenizer.decode(row) == caption


def test_captions_fit_in_48_tokens(tokenizer, captions):
    lengths = (tokenizer.encode(captions, max_len=128) != 0).sum(axis=1)
    assert lengths.max() <= 48
    assert lengths.mean() < 30  # whole-word pieces, not characters


def test_single_string_gives_one_row(tokenizer, captions):
    row = tokenizer.encode(captions[0], max_len=40)
    assert row.shape == (40,)
    np.testing.assert_array_equal(row, tokenizer.encode([captions[0]], max_len=40)[0])


def test_truncation_keeps_eos(tokenizer, captions):
    full = tokenizer.encode(captions[0], max_len=128)
    num_pieces = int((full != 0).sum()) - 2
    assert num_pieces > 6
    short = tokenizer.encode(captions[0], max_len=6)
    np.testing.assert_array_equal(short, [*full[:5], tokenizer.eos_id])
    with pytest.raises(ValueError, match="max_len must be >= 2"):
        tokenizer.encode("a", max_len=1)


def test_decode_skips_special_ids(tokenizer):
    ids = tokenizer.encode("a red circle", max_len=12)
    ids_with_masks = np.where(np.arange(12) == 2, tokenizer.mask_id, ids)
    assert tokenizer.decode(ids) == "a red circle"
    assert "MASK" not in tokenizer.decode(ids_with_masks)


def test_mask_string_in_text_is_not_the_mask_token(tokenizer):
    assert tokenizer.mask_id not in tokenizer.encode("[MASK] [CLS]", max_len=32)[1:]


def test_pickles_by_path(tokenizer):
    clone = pickle.loads(pickle.dumps(tokenizer))
    np.testing.assert_array_equal(
        clone.encode("a blue star", 10), tokenizer.encode("a blue star", 10)
    )


def test_missing_model_error_names_path_and_command(tmp_path):
    path = tmp_path / "nope.model"
    with pytest.raises(FileNotFoundError, match="nope.model.*python -m mvl.data.tokenizer"):
        Tokenizer(path)


def test_ensure_tokenizer_trains_once_then_loads(tmp_path, captions):
    path = tmp_path / "cache" / "spm.model"
    calls = []

    def captions_fn():
        calls.append(1)
        return captions[:500]

    first = ensure_tokenizer(path, captions_fn, vocab_size=128)
    mtime = os.stat(path).st_mtime_ns
    second = ensure_tokenizer(path, captions_fn, vocab_size=128)
    assert len(calls) == 1 and os.stat(path).st_mtime_ns == mtime
    assert second.vocab_size == first.vocab_size
    assert not [p for p in os.listdir(path.parent) if p != "spm.model"]  # no temp files left


def test_cli_writes_model(tmp_path):
    out = tmp_path / "cli" / "spm.model"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mvl.data.tokenizer",
            "--source",
            "shapes",
            "--split",
            "train",
            "--num_captions",
            "1000",
            "--vocab_size",
            "200",
            "--seed",
            "0",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "vocab_size=" in result.stdout and "decoded:" in result.stdout
    assert Tokenizer(out).vocab_size <= 200


def test_cli_unknown_source_lists_known_ones(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mvl.data.tokenizer",
            "--source",
            "imagenet",
            "--out",
            str(tmp_path / "x.model"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown data source 'imagenet'" in result.stderr and "shapes" in result.stderr
