"""The shape every file-backed source shares: `record(index)` gives the sample's stored
form (encoded image bytes, raw caption) and `__getitem__` decodes it (mvl/data/decode.py).

The converter (mvl/data/convert.py) copies records without re-encoding; training reads
decoded examples. Sources only need random access: the pipeline shuffles indices and
gives each process its rows (pipeline.ProcessRows).
"""

from __future__ import annotations

import abc
from typing import Any

from mvl.data import decode


class EncodedSource(abc.ABC):
    """Base of the file-backed sources. Subclasses define __len__, record, describe."""

    labels: tuple[str, ...] = ()  # real data has no shape / colour labels
    image_size: int = 0

    @abc.abstractmethod
    def __len__(self) -> int:
        ...

    @abc.abstractmethod
    def record(self, index: int) -> tuple[Any, Any]:
        """(encoded image bytes or a pixel array, raw caption); BadSample if unreadable."""
        ...

    @abc.abstractmethod
    def describe(self, index: int) -> str:
        ...

    def caption(self, index: int) -> str:
        """The cleaned caption (tokenizer training reads this; subclasses may skip images)."""
        return decode.clean_caption(self.record(index)[1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, caption = self.record(int(index))
        # Caption first: it is cheap, and a sample with both faults counts as its caption's.
        text = decode.clean_caption(caption)
        return {"image": decode.decode_image(image, self.image_size), "caption": text}

    def check_index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r} of length {len(self)}")
        return index
