"""Stopping cleanly on SIGTERM or SIGINT (Ctrl-C).

During start-up (tokenizer, data, model init, compile, restore) nothing is trained yet,
so a signal ends the process at once, with one line: 130 for Ctrl-C, 143 for SIGTERM;
likewise during an evaluation whose checkpoint is already written.
Once training has started, the current step finishes, the loop saves a checkpoint and
stops: a preempted run (SIGTERM) exits 0 and resumes by rerunning; Ctrl-C exits 130. A
second signal while that happens ends the process at once (the last checkpoint stays).

Python runs signal handlers only between bytecodes of the main thread, which can sit in
one XLA compilation for minutes; so signals are also written to a pipe (signal's wakeup
fd) that a watcher thread reads, and that thread ends the process when it must.

With several processes every one must stop at the same step: there JAX's preemption
sync point (its coordination service notices SIGTERM on any process, e.g. a TPU
maintenance event) decides, and Ctrl-C is left to its default.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import jax
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """Remembers the first SIGTERM / SIGINT once training started (`should_stop(step)`
    after each step); before that, and at a second signal, exits at once."""

    def __init__(self, describe_phase=lambda: "start-up", listen: bool = True):
        self.received: str | None = None
        self.training = False
        self.last_checkpoint = "none yet"
        # Set while nothing is unsaved (an evaluation after its checkpoint was written):
        # a signal then exits at once, naming what it was doing.
        self.all_saved_during: str | None = None
        self._describe_phase = describe_phase
        self._previous: dict = {}
        self._wakeup = None
        self._signals_while_training = 0
        self._exiting = threading.Lock()
        main_thread = threading.current_thread() is threading.main_thread()
        if listen and jax.process_count() == 1 and main_thread:
            self._listen()

    def _listen(self):
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        self._previous_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._wakeup = (read_end, write_end)
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._note)
        threading.Thread(target=self._watch, args=(read_end,), daemon=True).start()

    def _note(self, signum, frame):
        """In the main thread, between two bytecodes: the first signal once training
        started asks the loop to stop after this step (the loop sees it at once, so a
        stop is exactly at the step it came in)."""
        if not self.training or self.all_saved_during:
            self._exit_now(signal.Signals(signum))
            return
        if self.received is None:
            self.received = signal.Signals(signum).name
            name = _name(signal.Signals(signum))
            print(
                f"{name}: finishing this step, then saving a checkpoint ({name} again "
                "to exit at once)",
                flush=True,
            )

    def _watch(self, read_end: int):
        """In its own thread, so it acts while the main thread is inside XLA."""
        while True:
            data = os.read(read_end, 64)
            if not data:  # close() closed the write end
                os.close(read_end)
                return
            for number in data:
                if number not in (int(s) for s in SIGNALS):
                    continue
                if self.training:
                    self._signals_while_training += 1
                exit_now = not self.training or self.all_saved_during
                if exit_now or self._signals_while_training > 1:
                    self._exit_now(signal.Signals(number))

    def _exit_now(self, signum: signal.Signals):
        if not self._exiting.acquire(blocking=False):
            return  # the other thread is already saying it
        if self.training and self.all_saved_during:
            what = (
                f"during {self.all_saved_during}: checkpoint {self.last_checkpoint} is "
                "saved; rerun the same command to resume"
            )
        elif self.training:
            what = f"exiting at once without saving (last checkpoint: {self.last_checkpoint})"
        else:
            what = f"during {self._describe_phase()}, before any step was trained: nothing to save"
        label = "interrupted" if signum == signal.SIGINT else "stopped"
        print(f"mvl: {label}: {_name(signum)} {what}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + int(signum))

    def training_started(self):
        self.training = True

    def should_stop(self, step: int) -> bool:
        if jax.process_count() > 1:
            if multihost_utils.reached_preemption_sync_point(step):
                self.received = "preemption notice"
        return self.received is not None

    def close(self):
        """Puts the previous handlers back (a later Ctrl-C interrupts at once)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self._wakeup[1])  # the watcher sees the end, closes its side, returns
            self._wakeup = None


def _name(signum: signal.Signals) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signum.name
