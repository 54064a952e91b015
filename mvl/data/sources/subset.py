"""A contiguous range of another source: the held-out tail of a real train source, or
the first data.eval_size samples of an eval source."""

from __future__ import annotations

from typing import Any


class Subset:
    def __init__(self, parent: Any, start: int, stop: int):
        if not 0 <= start <= stop <= len(parent):
            raise ValueError(f"subset [{start}, {stop}) of a source of length {len(parent)}")
        self.parent, self.start, self.stop = parent, start, stop
        self.labels = getattr(parent, "labels", ())

    def __len__(self) -> int:
        return self.stop - self.start

    def __repr__(self) -> str:
        return f"Subset({self.parent!r}, {self.start}, {self.stop})"

    def _index(self, index: int) -> int:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        return self.start + index

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.parent[self._index(index)]

    def caption(self, index: int) -> str:
        parent_caption = getattr(self.parent, "caption", None)
        if parent_caption is None:
            return self.parent[self._index(index)]["caption"]
        return parent_caption(self._index(index))

    def describe(self, index: int) -> str:
        describe = getattr(self.parent, "describe", None)
        where = self._index(index)
        return describe(where) if describe else f"sample {where} of {self.parent!r:.80}"
