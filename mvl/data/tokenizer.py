"""A sentencepiece tokenizer with fixed special ids, trained from captions.

Ids: pad=0, unk=1, bos=2, eos=3, [MASK]=4, [CLS]=5. [MASK] and [CLS] are
control symbols: the model can emit them but text never encodes to them, so a
caption containing the string "[MASK]" can't forge a mask token.

Training runs in memory (sentence_iterator / model_writer) and the model is
written atomically, so concurrent readers never see a half-written file.

Create a model from the command line with:
  python -m mvl.data.tokenizer --source shapes --split train \
      --num_captions 20000 --vocab_size 256 --seed 0 --out PATH
or from any source spec (mvl/data/sources/), its captions sampled evenly:
  python -m mvl.data.tokenizer --source csv:/data/pairs.csv --num_captions 20000 --out PATH
"""

from __future__ import annotations

import argparse
import io
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import sentencepiece as spm

from mvl.data import special_tokens

# One source of truth for the reserved ids (masking and pooling rely on them too).
PAD_ID, UNK_ID, BOS_ID, EOS_ID = (
    special_tokens.PAD,
    special_tokens.UNK,
    special_tokens.BOS,
    special_tokens.EOS,
)
MASK_ID, CLS_ID = special_tokens.MASK, special_tokens.CLS
MASK_PIECE, CLS_PIECE = "[MASK]", "[CLS]"
CLI_HINT = (
    "python -m mvl.data.tokenizer --source shapes --split train "
    "--num_captions 20000 --vocab_size 256 --seed 0 --out {path}"
)

log = logging.getLogger(__name__)


class Tokenizer:
    """Encodes captions as `[CLS] pieces... [EOS] pad...` int32 rows."""

    def __init__(self, model_path: str | os.PathLike):
        self.model_path = os.fspath(model_path)
        if not os.path.exists(self.model_path):
            raise FileNotFoundError(
                f"tokenizer model {self.model_path!r} does not exist; create it with: "
                + CLI_HINT.format(path=self.model_path)
            )
        self._sp = spm.SentencePieceProcessor(model_file=self.model_path)
        self._check_special_ids()
        self._skip_on_decode = np.array([PAD_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID])

    def _check_special_ids(self) -> None:
        sp = self._sp
        actual = (
            sp.pad_id(),
            sp.unk_id(),
            sp.bos_id(),
            sp.eos_id(),
            sp.piece_to_id(MASK_PIECE),
            sp.piece_to_id(CLS_PIECE),
        )
        expected = (PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID)
        if actual != expected:
            raise ValueError(
                f"tokenizer model {self.model_path!r} has special ids "
                f"(pad, unk, bos, eos, mask, cls) = {actual}, expected {expected}; "
                "retrain it with mvl.data.tokenizer"
            )

    # A SentencePieceProcessor can't be relied on to pickle; grain worker
    # processes get the path and reload the model instead.
    def __reduce__(self) -> tuple[Any, ...]:
        return (Tokenizer, (self.model_path,))

    def __repr__(self) -> str:
        return f"Tokenizer({self.model_path!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    pad_id = property(lambda self: PAD_ID)
    unk_id = property(lambda self: UNK_ID)
    bos_id = property(lambda self: BOS_ID)
    eos_id = property(lambda self: EOS_ID)
    mask_id = property(lambda self: MASK_ID)
    cls_id = property(lambda self: CLS_ID)
    special_ids = property(lambda self: special_tokens.SENTENCEPIECE)

    def encode(self, texts: str | Sequence[str], max_len: int) -> np.ndarray:
        """int32 [N, max_len] (or [max_len] for one str): [CLS] pieces [EOS] then pad.

        Too-long texts lose their last pieces; [EOS] is always kept so the model
        sees where the (truncated) text ends.
        """
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 to hold [CLS] and [EOS], got {max_len}")
        single = isinstance(texts, str)
        # A list goes through sentencepiece's thread pool, which costs ~60 us
        # more than encoding one string directly (the per-example pipeline case).
        pieces = [self._sp.encode(texts)] if single else self._sp.encode(list(texts))
        ids = np.full((len(pieces), max_len), PAD_ID, np.int32)
        for row, text_ids in zip(ids, pieces):
            body = text_ids[: max_len - 2]
            row[0] = CLS_ID
            row[1 : 1 + len(body)] = body
            row[1 + len(body)] = EOS_ID
        return ids[0] if single else ids

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Text of one id row, skipping pad/bos/eos/[MASK]/[CLS]."""
        ids = np.asarray(ids).reshape(-1)
        kept = ids[~np.isin(ids, self._skip_on_decode)]
        return self._sp.decode(kept.tolist())


def train_tokenizer(
    captions: Iterable[str],
    model_path: str | os.PathLike,
    vocab_size: int = 256,
    model_type: str = "bpe",
) -> Tokenizer:
    """Trains a sentencepiece model on `captions` and writes it to `model_path`.

    BPE by default: on templated captions like shapes', sentencepiece 0.2.3's
    unigram seed extraction finds only ~80 pieces and splits most words into
    characters (2.3x longer sequences), while BPE learns whole words.
    hard_vocab_limit=False lets a small corpus end with fewer pieces than asked.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(captions),
        model_writer=model,
        model_type=model_type,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        control_symbols=[MASK_PIECE, CLS_PIECE],  # ids 4, 5: right after the reserved ones
        num_threads=1,  # deterministic, and the corpus is small
        minloglevel=2,  # sentencepiece logs every step at the default level
    )
    write_atomically(model.getvalue(), os.fspath(model_path))
    return Tokenizer(model_path)


def write_atomically(data: bytes, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ensure_tokenizer(
    model_path: str | os.PathLike, captions_fn: Callable[[], Iterable[str]], vocab_size: int = 256
) -> Tokenizer:
    """Loads `model_path`, training and caching it from captions_fn() if it is missing."""
    if os.path.exists(model_path):
        return Tokenizer(model_path)
    log.info(
        "tokenizer %s not found; training one (vocab_size=%d) and caching it there",
        os.fspath(model_path),
        vocab_size,
    )
    return train_tokenizer(captions_fn(), model_path, vocab_size)


def captions_from_source(source: Any, num: int, spread: bool = False) -> Iterator[str]:
    """The captions of `num` examples of a source of {"caption": ...} dicts: the first
    `num`, or with `spread` `num` evenly spaced over the whole source (real data: the
    first rows of a file or shard are rarely a fair sample of all of them).

    Uses the source's `caption(index)` when it has one, which skips decoding or
    rendering images (ShapesSource and the file sources provide it). Captions that
    cannot be used (empty, not UTF-8, unreadable rows) are left out.
    """
    get_caption = getattr(source, "caption", None) or (lambda i: source[i]["caption"])
    count = min(num, len(source))
    if spread and count:
        indices = np.unique(np.linspace(0, len(source) - 1, count).astype(np.int64)).tolist()
    else:
        indices = range(count)
    for index in indices:
        try:
            yield get_caption(index)
        except Exception as e:  # noqa: BLE001 -- a broken sample is skipped, as in training
            log.debug("tokenizer: skipped caption %d: %s", index, e)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the mvl sentencepiece tokenizer.")
    parser.add_argument(
        "--source",
        default="shapes",
        help="shapes, or a spec FORMAT:PATH (csv:, tsv:, jsonl:, webdataset:, array_record:, "
        "tfds:NAME:SPLIT); see README 'Bring your data'",
    )
    parser.add_argument("--split", default="train", help="split of a generated source (shapes)")
    parser.add_argument("--image_key", default="filepath", help="csv/tsv/jsonl image column")
    parser.add_argument("--caption_key", default="title", help="csv/tsv/jsonl caption column")
    parser.add_argument("--tfds_data_dir", default="")
    parser.add_argument("--tfds_caption_key", default="caption")
    parser.add_argument("--num_captions", type=int, default=20_000)
    parser.add_argument("--vocab_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image_size", type=int, default=64)
    parser.add_argument("--model_type", default="bpe", choices=("bpe", "unigram"))
    parser.add_argument("--out", required=True, help="path of the .model file to write")
    args = parser.parse_args(argv)

    from mvl.data import pipeline, sources  # here: pipeline is the heavier import
    from mvl.runtime.errors import UserError

    options = sources.SourceOptions(
        table_image_key=args.image_key,
        table_caption_key=args.caption_key,
        table_keys_named="--image_key / --caption_key",
        tfds_data_dir=args.tfds_data_dir,
        tfds_caption_key=args.tfds_caption_key,
    )
    try:
        source = pipeline.make_source(
            args.source,
            args.split,
            size=args.num_captions,
            seed=args.seed,
            image_size=args.image_size,
            options=options,
        )
    except (ValueError, UserError) as e:
        parser.error(f"--source {args.source}: {e}")
    generated = args.source in pipeline.SOURCES
    captions = captions_from_source(source, args.num_captions, spread=not generated)
    first = next(captions, None)
    if first is None:
        parser.error(f"--source {args.source}: no usable captions")
    tokenizer = train_tokenizer(
        itertools.chain([first], captions), args.out, args.vocab_size, args.model_type
    )
    ids = tokenizer.encode(first, max_len=64)
    print(f"wrote {args.out}: vocab_size={tokenizer.vocab_size}")
    print(f"example: {first!r}")
    print(f"  ids: {ids[ids != PAD_ID].tolist()}")
    print(f"  decoded: {tokenizer.decode(ids)!r}")


if __name__ == "__main__":
    main()
