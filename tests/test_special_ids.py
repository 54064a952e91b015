"""Special ids come from the run's tokenizer, never from a silent sentencepiece default:
a CLIP BPE run (its pad id 0 is the real token "!") gets CLIP's ids wherever a model is
built without the tokenizer object at hand (`mvl.embed`, ahead-of-time compilation)."""

import os

import ml_collections
import numpy as np
import pytest

from mvl import config as config_lib
from mvl import embed
from mvl.data import clip_bpe
from mvl.data.special_tokens import SENTENCEPIECE
from mvl.models import model as model_lib
from mvl.runtime.errors import UserError
from mvl.train.run_tokenizer import special_ids
from tests.fixtures import clip_parity

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "clip")
TINY_BPE = os.path.join(FIXTURES, "bpe_tiny.txt.gz")


def data_config(**data) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict({"data": {"tokenizer": "", "vocab_size": 256, **data}})


def test_a_clip_bpe_vocabulary_gives_clips_ids():
    tokenizer = clip_bpe.ClipBpeTokenizer(TINY_BPE)
    got = special_ids(data_config(tokenizer=TINY_BPE, tokenizer_kind="clip_bpe"))
    assert got == tokenizer.special_ids and got != SENTENCEPIECE
    assert got.pad_is_token and got.mask == tokenizer.mask_id == tokenizer.clip_vocab_size


def test_clip_configs_without_the_file_get_clips_layout():
    for name in ("clip", "maskclip"):
        cfg = config_lib.load_config(f"configs/{name}.py:paper")
        got = special_ids(cfg)
        # CLIP's vocabulary: <start_of_text> 49406, <end_of_text> 49407; [MASK] appended.
        assert (got.end, got.mask, got.pad) == (49407, 49408, 0), name
        assert 49406 in got.never_masked and got.pad_is_token, name


def test_the_layout_matches_a_real_vocabularys_ids():
    tokenizer = clip_bpe.ClipBpeTokenizer(TINY_BPE)
    assert clip_bpe.layout_special_ids(tokenizer.clip_vocab_size) == tokenizer.special_ids


def test_sentencepiece_configs_get_sentencepieces_ids():
    for name in ("maskvlm", "siglip"):
        assert special_ids(config_lib.load_config(f"configs/{name}.py:demo")) == SENTENCEPIECE


def test_embed_builds_a_clip_runs_model_with_clips_ids(tmp_path, monkeypatch):
    run = clip_parity.convert_to(
        str(tmp_path / "run"),
        kind="open_clip",
        checkpoint=os.path.join(FIXTURES, "open_clip_tiny.safetensors"),
        tokenizer=TINY_BPE,
        arch=os.path.join(FIXTURES, "open_clip_tiny.json"),
    )
    built = []
    real_build = model_lib.build_model

    def recording_build(cfg, vocab_size, special):
        built.append(special)
        return real_build(cfg, vocab_size, special)

    monkeypatch.setattr(model_lib, "build_model", recording_build)
    # A caption holding "!" (id 0, CLIP's pad id too) must still be read as text.
    (tmp_path / "captions.txt").write_text("a red circle!\n")
    out = tmp_path / "out.npz"
    argv = ["--checkpoint", run, "--texts", str(tmp_path / "captions.txt"), "--out", str(out)]
    assert embed.main(argv) == 0
    assert built == [clip_bpe.ClipBpeTokenizer(TINY_BPE).special_ids]
    assert np.isfinite(np.load(out)["text_embeddings"]).all()


def test_a_missing_clip_vocabulary_is_named(tmp_path):
    missing = str(tmp_path / "gone.txt.gz")
    with pytest.raises(UserError, match="gone.txt.gz does not exist"):
        special_ids(data_config(tokenizer=missing, tokenizer_kind="clip_bpe"))
