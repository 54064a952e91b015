"""Stopping cleanly: SIGTERM or SIGINT lets the current step finish, then the loop
saves a checkpoint and exits, so a preempted run loses nothing and resumes from it.

With several processes every one must stop at the same step: there JAX's preemption
sync point (its coordination service notices SIGTERM on any process, e.g. a TPU
maintenance event) decides, and Ctrl-C is left to its default.
"""

from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class StopRequests:
    """Remembers the first SIGTERM / SIGINT; `should_stop(step)` after each step."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._note)

    def _note(self, signum, frame):
        self.received = signal.Signals(signum).name

    def should_stop(self, step: int) -> bool:
        if jax.process_count() > 1:
            if multihost_utils.reached_preemption_sync_point(step):
                self.received = "preemption notice"
        return self.received is not None

    def close(self):
        """Puts the previous handlers back (a second Ctrl-C then interrupts at once)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
