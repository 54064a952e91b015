"""Leaves broken samples out of the stream, counting them in the batch that follows.

Each Skipped stand-in (mvl/data/preprocess.py) is logged and dropped; the next kept
example records how many it follows (`skipped_before`, by kind in `skipped_kinds`).
Only `max_in_a_row` broken samples in a row (a dataset that is all junk, or a bug) stop
the run, with the last sample's reason.
"""

from __future__ import annotations

import logging
import threading

import grain
import numpy as np

from mvl.data.bad_sample import SKIP_KINDS, Skipped
from mvl.runtime.errors import UserError

log = logging.getLogger(__name__)


class _SkipBrokenIterator(grain.DatasetIterator):
    def __init__(self, parent: grain.DatasetIterator, max_in_a_row: int, counter: SkipLog):
        super().__init__(parent)
        self.max_in_a_row, self.counter = max_in_a_row, counter

    def __next__(self) -> dict[str, np.ndarray]:
        skipped, kinds = 0, np.zeros(len(SKIP_KINDS), np.int32)
        while True:
            element = next(self._parent)
            if not isinstance(element, Skipped):
                return {**element, "skipped_before": np.int32(skipped), "skipped_kinds": kinds}
            skipped += 1
            kinds[SKIP_KINDS.index(element.kind)] += 1
            self.counter.record(element)
            if skipped >= self.max_in_a_row:
                raise UserError(
                    f"{skipped} samples in a row could not be used "
                    f"(data.max_skipped_in_a_row={self.max_in_a_row}); the last, "
                    f"{element.where}: {element.reason}"
                )

    # Between two elements nothing is pending, so the parent's position is the state.
    def get_state(self):
        return self._parent.get_state()

    def set_state(self, state):
        self._parent.set_state(state)


class SkipBroken(grain.IterDataset):
    """Drops Skipped stand-ins; each kept example records how many it follows."""

    def __init__(self, parent: grain.IterDataset, max_in_a_row: int):
        super().__init__(parent)
        self.max_in_a_row = max_in_a_row

    def __iter__(self) -> _SkipBrokenIterator:
        return _SkipBrokenIterator(self._parent.__iter__(), self.max_in_a_row, SKIP_LOG)


class SkipLog:
    """Logs skipped samples: the first `first` of them, then every `every`-th."""

    def __init__(self, first: int = 20, every: int = 1000):
        self.first, self.every, self.count = first, every, 0
        self._lock = threading.Lock()

    def record(self, skipped: Skipped):
        with self._lock:
            self.count += 1
            count = self.count
        if count <= self.first or count % self.every == 0:
            log.warning(
                "skipped %s: %s (%d skipped in this process)", skipped.where, skipped.reason, count
            )


SKIP_LOG = SkipLog()
