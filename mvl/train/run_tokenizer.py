"""A run's tokenizer: the config's, or WORKDIR/tokenizer.model (trained from the train
captions when a run starts without one), and the record a checkpoint keeps of it.

Training and `python -m mvl.evaluate` read it the same way (`load_tokenizer`); only a
starting run may train one.
"""

from __future__ import annotations

import hashlib
import os

from mvl.data import pipeline
from mvl.data import tokenizer as tokenizer_lib
from mvl.runtime.errors import UserError


def load_tokenizer(cfg, workdir: str, train_if_missing: bool = True):
    """data.tokenizer, or WORKDIR/tokenizer.model (trained from the train captions with
    data.vocab_size pieces if missing and `train_if_missing`). A CLIP BPE vocabulary
    (.txt[.gz] / .json, imported CLIP text towers) is read as it is, plus the [MASK] id
    it appends (mvl/data/clip_bpe.py)."""
    from mvl.data import clip_bpe

    if cfg.data.tokenizer and clip_bpe.is_clip_bpe(cfg.data.tokenizer):
        return clip_bpe.ClipBpeTokenizer(cfg.data.tokenizer)
    if cfg.data.get("tokenizer_kind", "sentencepiece") == "clip_bpe":
        raise UserError(
            "config data.tokenizer: data.tokenizer_kind='clip_bpe' needs CLIP's BPE merges "
            "file (bpe_simple_vocab_16e6.txt.gz, in the open_clip_torch package): set "
            "--config.data.tokenizer=PATH"
        )
    path = cfg.data.tokenizer or os.path.join(workdir, "tokenizer.model")
    if not os.path.exists(path) and (cfg.data.tokenizer or not train_if_missing):
        fix = (
            "leave it empty to train one into the workdir, or run python -m mvl.data.tokenizer"
            if train_if_missing
            else "point it at the tokenizer the run was trained with"
        )
        raise UserError(f"config data.tokenizer: {path} does not exist; {fix}")
    source = pipeline.source_for_config(cfg.data, "train", cfg.seed) if train_if_missing else None
    return tokenizer_lib.ensure_tokenizer(
        path,
        lambda: tokenizer_lib.captions_from_source(
            source, cfg.data.tokenizer_captions, spread=cfg.data.source not in pipeline.SOURCES
        ),
        cfg.data.vocab_size,
    )


def special_ids(cfg):
    """The special ids of the config's tokenizer, without training or loading a
    sentencepiece model: a CLIP BPE vocabulary's own (read from data.tokenizer; CLIP's
    layout for data.vocab_size tokens when data.tokenizer_kind is clip_bpe and no file
    is named, as in an ahead-of-time compilation), else mvl's sentencepiece ids (which
    every mvl sentencepiece model reserves; mvl/data/tokenizer.py checks them on load).
    For code that builds a model without the tokenizer object at hand: passing
    sentencepiece's ids for a CLIP BPE run would read CLIP's pad id 0, the real token
    "!", as padding and mask the wrong ids."""
    from mvl.data import clip_bpe, special_tokens

    if cfg.data.tokenizer and clip_bpe.is_clip_bpe(cfg.data.tokenizer):
        return clip_bpe.ClipBpeTokenizer(cfg.data.tokenizer).special_ids
    if cfg.data.get("tokenizer_kind", "sentencepiece") == "clip_bpe":
        return clip_bpe.layout_special_ids(cfg.data.vocab_size)
    return special_tokens.SENTENCEPIECE


def tokenizer_identity(tokenizer) -> dict:
    """What a checkpoint records of its tokenizer: token ids only mean something with
    the same model file."""
    with open(tokenizer.model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"vocab_size": tokenizer.vocab_size, "sha256": digest, "path": tokenizer.model_path}


def check_same_tokenizer(saved: dict | None, current: dict, where: str):
    if not saved:
        return
    if saved["vocab_size"] != current["vocab_size"] or saved["sha256"] != current["sha256"]:
        raise UserError(
            f"config data.tokenizer: {current['path']} (vocab {current['vocab_size']}, "
            f"sha256 {current['sha256'][:12]}) is not the tokenizer {where} was trained "
            f"with ({saved['path']}, vocab {saved['vocab_size']}, sha256 "
            f"{saved['sha256'][:12]}); its token ids would mean other words. Point "
            "data.tokenizer at that file, or use a fresh --workdir."
        )
