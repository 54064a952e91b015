"""Special token ids: the ones mvl's sentencepiece tokenizer reserves, and `SpecialIds`,
what any tokenizer declares so masking, pooling and attention masks read its ids rather
than assume these."""

from __future__ import annotations

import dataclasses

PAD = 0
UNK = 1
BOS = 2
EOS = 3
MASK = 4  # "[MASK]"
CLS = 5  # "[CLS]": the first token of every sequence, pooled by the text tower
NUM_RESERVED = 6


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """A tokenizer's special ids (frozen and hashable: a Flax module field, static in jit).

    `never_masked`: ids text masking leaves alone (start / end / class tokens; pads are
    left alone anyway, being invalid). `ordinary`: [low, high) of the ids BERT masking
    draws random replacements from; high None is the vocabulary size. `pad_is_token`:
    the pad id is also a real token (CLIP's 0 is "!"), so which positions hold text is
    read from the end token's position instead of from the ids (see `valid`).
    """

    pad: int = PAD
    end: int = EOS
    mask: int = MASK
    never_masked: tuple[int, ...] = (PAD, CLS, EOS, BOS)
    ordinary: tuple[int, int | None] = (NUM_RESERVED, None)
    pad_is_token: bool = False

    def valid(self, ids):
        """bool [B, L]: the positions that hold the caption (start and end tokens too).

        With a pad id no text encodes to, that is `ids != pad`. When the pad id is a real
        token, a caption's own copies of it must stay valid: every row is written as
        `start ... end pad...`, so valid is everything up to and including the first end
        token (a row without one, truncated elsewhere, is valid throughout)."""
        import jax.numpy as jnp  # here: tokenizers (grain workers) import this module

        if not self.pad_is_token:
            return ids != self.pad
        is_end = ids == self.end
        first_end = jnp.where(is_end.any(-1), jnp.argmax(is_end, axis=-1), ids.shape[-1] - 1)
        return jnp.arange(ids.shape[-1]) <= first_end[..., None]

    def maskable(self, ids):
        """bool [B, L]: the caption's own tokens, the ones text masking may pick."""
        import jax.numpy as jnp

        return self.valid(ids) & ~jnp.isin(ids, jnp.array(self.never_masked))

    def ordinary_range(self, vocab_size: int) -> tuple[int, int]:
        low, high = self.ordinary
        return low, vocab_size if high is None else high


SENTENCEPIECE = SpecialIds()  # mvl's tokenizer (mvl/data/tokenizer.py)
