"""Start-up feedback: one line per phase as it ends, with its time, so a run is never
silent for long before its first step.

    [start] imports 4.2s
    [start] tokenizer 0.0s (/data/tok.model, vocab 256)
    [start] model init 2.1s (1.6M parameters)
    [start] data 0.4s
    [start] restore 0.0s (fresh run)
    [start] eval data 1.3s (1000 pairs)
    [start] first batch 0.9s
    [start] compile 14.8s

`current` names the phase under way (Ctrl-C during start-up says which).
"""

from __future__ import annotations

import contextlib
import time


class StartupPhases:
    def __init__(self, command_started: float | None = None, verbose: bool = True):
        self.verbose = verbose
        self.current = "start-up"
        if command_started is not None:
            self._line("imports", time.time() - command_started, [])

    @contextlib.contextmanager
    def phase(self, name: str):
        """Times the block; it may add details with the function it is given."""
        self.current, started, details = name, time.time(), []
        yield details.append
        self._line(name, time.time() - started, details)
        self.current = "start-up"

    def _line(self, name: str, seconds: float, details: list[str]):
        if self.verbose:
            extra = f" ({'; '.join(details)})" if details else ""
            print(f"[start] {name} {seconds:.1f}s{extra}", flush=True)


QUIET = StartupPhases(verbose=False)  # for a Trainer built outside a run (tests, tools)
