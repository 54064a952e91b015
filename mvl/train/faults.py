"""Faults on purpose, for the reliability tests: a run told to die, or to see a poisoned
batch, at chosen steps. Nothing happens unless the environment asks for it.

  MVL_INJECT_FAULTS="kill_after_step=7;kill_while_saving=9;term_after_step=3;nan_batch=5,6"
  MVL_INJECT_FAULTS="disk_full_at_save=4"

kill_after_step   SIGKILL (kill -9) this process once step N's update is done (any
                  checkpoint it dispatched may still be writing)
kill_while_saving SIGKILL right after step N's checkpoint save is dispatched, while
                  orbax writes it in the background
term_after_step   SIGTERM to itself after step N (a preemption notice: save, exit 0)
nan_batch         multiply step N's images by NaN (a non-finite loss, then a skip)
eval_fails_at     the evaluation at step N raises (a bug in an evaluator)
disk_full_at_save step N's checkpoint fails in orbax's save thread with ENOSPC once its
                  files are written, before it is committed (as a full disk fails it)

Used by tests/test_faults.py and the longer `python -m tests.fault_trials`.
"""

from __future__ import annotations

import errno
import os
import signal

import numpy as np

ENVIRONMENT_VARIABLE = "MVL_INJECT_FAULTS"
KINDS = (
    "kill_after_step",
    "kill_while_saving",
    "term_after_step",
    "nan_batch",
    "disk_full_at_save",
    "eval_fails_at",
)


class Faults:
    def __init__(self, spec: str = ""):
        self.steps: dict[str, set[int]] = {kind: set() for kind in KINDS}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            kind, _, steps = part.partition("=")
            if kind not in KINDS:
                raise ValueError(
                    f"{ENVIRONMENT_VARIABLE}: unknown fault {kind!r}; known: {', '.join(KINDS)}"
                )
            self.steps[kind].update(int(s) for s in steps.split(","))

    @classmethod
    def from_environment(cls) -> "Faults":
        faults = cls(os.environ.get(ENVIRONMENT_VARIABLE, ""))
        if faults.steps["disk_full_at_save"]:
            faults._fill_disk_at(faults.steps["disk_full_at_save"])
        return faults

    @staticmethod
    def _fill_disk_at(steps: set[int]):
        """The checksum manifest is the last file a save writes, in orbax's save thread,
        before the checkpoint is committed: failing it there is a full disk's failure
        as the loop sees it (in the background, surfacing later)."""
        from mvl.runtime.checkpoint import checksums

        write_manifest = checksums.write_manifest

        def failing(directory: str):
            step = os.path.basename(directory).split(".")[0]
            if step.isdigit() and int(step) in steps:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
            write_manifest(directory)

        checksums.write_manifest = failing

    def poison(self, step: int, batch: dict) -> dict:
        if step not in self.steps["nan_batch"]:
            return batch
        return {**batch, "image": batch["image"] * np.float32(np.nan)}

    def after_step(self, step: int):
        if step in self.steps["kill_after_step"]:
            _die(f"after step {step}")
        if step in self.steps["term_after_step"]:
            print(f"fault injection: SIGTERM after step {step}", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)

    def before_eval(self, step: int):
        if step in self.steps["eval_fails_at"]:
            raise RuntimeError(f"fault injection: the evaluation at step {step} fails")

    def after_save(self, step: int, saved: bool):
        if saved and step in self.steps["kill_while_saving"]:
            _die(f"while saving step {step}")


def _die(when: str):
    print(f"fault injection: SIGKILL {when}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
