"""CLIP's byte-level BPE tokenizer, for text towers imported from open_clip or Hugging
Face (`python -m mvl.weights`): their token embeddings only mean something with the
vocabulary they were trained with.

The BPE itself is Hugging Face `tokenizers` (a BPE model with CLIP's `</w>` word-end
suffix, a regex split and a byte-level alphabet); around it, CLIP's text cleanup
(NFC, HTML unescaping, whitespace collapsed, lower case) and CLIP's row layout:
`<start_of_text> pieces... <end_of_text>` padded with id 0, truncated keeping the end
token, as open_clip's tokenizer writes them (77 ids for CLIP's text towers).

The vocabulary is the file a user points `data.tokenizer` at:
- open_clip's merges file `bpe_simple_vocab_16e6.txt.gz` (or any `*.txt[.gz]` merges
  file; plain `merges.txt` too): the vocabulary is derived from the merges as CLIP does
  (256 byte symbols, the same with `</w>`, one per merge, then start / end of text);
  a `vocab.json` beside a `merges.txt` is used instead when present (Hugging Face);
- Hugging Face `tokenizer.json`: its BPE vocabulary and merges.

Differences from open_clip's own tokenizer, on purpose: ftfy's mojibake repair is not
applied (NFC normalisation, which ftfy also does, is), and the literal strings
`<start_of_text>` / `<end_of_text>` inside a caption are text, not special ids.

Masking: CLIP's vocabulary has no [MASK] token, so this tokenizer appends one after
it (id 49408 for CLIP's 49408 tokens; `vocab_size` counts it). No text encodes to it.
`python -m mvl.weights` gives the imported token embedding the matching extra row, and
`mvl.weights export` drops it again (mvl/weights/run_dir.py). CLIP pads with id 0, which
is also the real token "!", so `special_ids` marks the pad as a token: which positions
hold the caption is read from the end token's position (SpecialIds.valid), not from
`ids != 0`.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import tokenizers
from tokenizers import pre_tokenizers

from mvl.data.special_tokens import SpecialIds
from mvl.runtime.errors import UserError

CONTEXT_LENGTH = 77  # every CLIP text tower's
# CLIP's word split: contractions, letter runs, single digits, other non-space runs.
SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
START_NAMES = ("<start_of_text>", "<|startoftext|>")  # open_clip's, Hugging Face's
END_NAMES = ("<end_of_text>", "<|endoftext|>")
SUFFIXES = (".txt", ".txt.gz", ".json")


def is_clip_bpe(path: str) -> bool:
    """Whether `data.tokenizer` names a CLIP BPE vocabulary (not a sentencepiece model)."""
    return os.fspath(path).endswith(SUFFIXES)


def byte_alphabet() -> dict[int, str]:
    """The printable stand-ins for bytes 0..255 that byte-level BPE vocabularies (GPT-2,
    CLIP) are written in, in vocabulary order: printable Latin-1 bytes stand for
    themselves and come first, then the others, as code points from 256 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    others = [b for b in range(256) if b not in printable]
    return {
        **{b: chr(b) for b in printable},
        **{b: chr(256 + n) for n, b in enumerate(others)},
    }


def clean(text: str) -> str:
    """CLIP's cleanup before splitting ("lower" in open_clip)."""
    text = html.unescape(html.unescape(unicodedata.normalize("NFC", text)))
    return " ".join(text.split()).lower()


class ClipBpeTokenizer:
    """Encodes captions as `<start_of_text> pieces... <end_of_text> 0...` int32 rows."""

    def __init__(self, model_path: str | os.PathLike):
        self.model_path = os.fspath(model_path)
        vocab, merges = read_vocabulary(self.model_path)
        self._start, self._end = special_id(vocab, START_NAMES), special_id(vocab, END_NAMES)
        self.clip_vocab_size = max(vocab.values()) + 1  # the rows CLIP's embedding has
        self._mask = self.clip_vocab_size  # [MASK], appended after CLIP's vocabulary
        self._bpe = build(vocab, merges)
        self._pieces = {i: piece for piece, i in vocab.items()}
        self._byte_of = {c: b for b, c in byte_alphabet().items()}

    # The tokenizers object pickles, but a path is smaller for grain's worker processes.
    def __reduce__(self) -> tuple[Any, ...]:
        return (ClipBpeTokenizer, (self.model_path,))

    def __repr__(self) -> str:
        return f"ClipBpeTokenizer({self.model_path!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        """CLIP's tokens and the appended [MASK]: the rows of mvl's token embedding."""
        return self.clip_vocab_size + 1

    pad_id = property(lambda self: 0)
    bos_id = property(lambda self: self._start)
    eos_id = property(lambda self: self._end)
    mask_id = property(lambda self: self._mask)

    @property
    def special_ids(self) -> SpecialIds:
        return special_ids(self._start, self._end, self._mask)

    def encode(self, texts: str | Sequence[str], max_len: int = CONTEXT_LENGTH) -> np.ndarray:
        """int32 [N, max_len] (or [max_len] for one str); too-long texts lose their last
        pieces, the end token is kept (open_clip's truncation)."""
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 to hold start and end tokens, got {max_len}")
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        encodings = self._bpe.encode_batch([clean(t) for t in texts], add_special_tokens=False)
        ids = np.zeros((len(texts), max_len), np.int32)
        for row, encoding in zip(ids, encodings):
            body = encoding.ids[: max_len - 2]
            row[0] = self._start
            row[1 : 1 + len(body)] = body
            row[1 + len(body)] = self._end
        return ids[0] if single else ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of one id row up to its end token, start and [MASK] tokens skipped."""
        ids = np.asarray(ids).reshape(-1).tolist()
        ids = ids[: ids.index(self._end)] if self._end in ids else ids
        symbols = "".join(self._pieces[i] for i in ids if i not in (self._start, self._mask))
        words = [bytes(self._byte_of[c] for c in w) for w in symbols.split("</w>")]
        return b" ".join(words).decode("utf-8", errors="replace").strip()


def special_ids(start: int, end: int, mask: int) -> SpecialIds:
    """A CLIP BPE vocabulary's special ids: pad 0 (also the token "!"), its start / end
    tokens and the appended [MASK]. Random replacements (BERT's 10%) come from below the
    start / end tokens, which CLIP's vocabularies (open_clip's and Hugging Face's) put
    last."""
    return SpecialIds(
        pad=0,
        end=end,
        mask=mask,
        never_masked=(start, end, mask),
        ordinary=(0, min(start, end)),
        pad_is_token=True,
    )


def layout_special_ids(clip_vocab_size: int) -> SpecialIds:
    """The special ids of a CLIP vocabulary of `clip_vocab_size` tokens laid out as
    CLIP's are (start and end of text its last two ids, [MASK] appended after them), for
    when the vocabulary file itself is not at hand (ahead-of-time compilation)."""
    start, end = clip_vocab_size - 2, clip_vocab_size - 1
    return special_ids(start, end, clip_vocab_size)


def build(vocab: dict[str, int], merges: list[tuple[str, str]]) -> tokenizers.Tokenizer:
    """A `tokenizers` BPE with CLIP's split and byte-level alphabet (cleanup is ours)."""
    model = tokenizers.models.BPE(
        vocab=vocab, merges=merges, end_of_word_suffix="</w>", continuing_subword_prefix=""
    )
    bpe = tokenizers.Tokenizer(model)
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(tokenizers.Regex(SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return bpe


def special_id(vocab: dict[str, int], names: tuple[str, ...]) -> int:
    for name in names:
        if name in vocab:
            return vocab[name]
    raise UserError(f"CLIP BPE vocabulary has none of the tokens {', '.join(names)}")


def read_vocabulary(path: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) from a merges file (.txt / .txt.gz) or a tokenizer.json."""
    if not os.path.exists(path):
        raise UserError(f"config data.tokenizer: CLIP BPE vocabulary {path} does not exist")
    try:
        if path.endswith(".json"):
            return _from_tokenizer_json(path)
        merges = _read_merges(path)
        beside = os.path.join(os.path.dirname(path), "vocab.json")
        if path.endswith("merges.txt") and os.path.exists(beside):
            with open(beside, encoding="utf-8") as f:
                return json.load(f), merges
        return vocab_from_merges(merges), merges
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"config data.tokenizer: cannot read CLIP BPE vocabulary {path}: {e}")


def _read_merges(path: str) -> list[tuple[str, str]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    # A "#version" header line first (open_clip's gz has a file name before it); open_clip
    # reads at most 48894 merges after it.
    body = lines[1:] if lines and "#version" in lines[0] else lines
    merges = [tuple(line.split()) for line in body[: 49152 - 256 - 2] if line.strip()]
    bad = next((m for m in merges if len(m) != 2), None)
    if bad is not None:
        raise ValueError(f"merge line {' '.join(bad)!r} is not two symbols")
    return merges


def vocab_from_merges(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary order: bytes, bytes ending a word, merges, start, end."""
    alphabet = list(byte_alphabet().values())
    pieces = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    pieces += [START_NAMES[0], END_NAMES[0]]
    return {piece: i for i, piece in enumerate(pieces)}


def _from_tokenizer_json(path: str):
    with open(path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"model type {model.get('type')!r} is not BPE")
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges
