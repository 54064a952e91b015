"""What a broken sample is: BadSample (raised), Skipped (its stand-in in the stream) and
the fixed list of reasons they are counted under.

Separate from pipeline.py so sources and decoding can raise BadSample without importing
the pipeline (which imports them).
"""

from __future__ import annotations

import dataclasses

# Each skipped sample is counted under one of these (data/skipped/<kind> in the training
# metrics; `python -m mvl.data.convert`'s report). Fixed, so batches and the jitted step
# always see the same keys.
SKIP_KINDS = (
    "missing_image",  # no image file / tar member / feature
    "not_an_image",  # empty or unidentifiable bytes
    "truncated_image",  # Pillow could identify it but not decode all of it
    "huge_image",  # more pixels than decode.MAX_IMAGE_PIXELS
    "bad_image",  # decoded to the wrong shape or to non-finite pixels
    "empty_caption",
    "caption_not_utf8",
    "bad_record",  # a row / record / tar entry that cannot be parsed
    "other",  # anything else the source raised (I/O errors, bugs)
)


class BadSample(ValueError):
    """A sample that cannot be used; the pipeline skips and counts it under `kind`."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        if kind not in SKIP_KINDS:
            raise ValueError(f"unknown skip kind {kind!r}; known: {SKIP_KINDS}")
        self.kind = kind


def kind_of(error: BaseException) -> str:
    return error.kind if isinstance(error, BadSample) else "other"


@dataclasses.dataclass(frozen=True)
class Skipped:
    """Stands in the stream for a broken sample until the skipping step drops it."""

    where: str
    reason: str
    kind: str = "other"
