"""A run's folder: created and proven writable before any compute is spent."""

from __future__ import annotations

import os

import jax

from mvl.runtime.errors import UserError


class WorkdirError(UserError, OSError):
    """The workdir cannot be created or written."""


def prepare_workdir(workdir: str) -> str:
    """Creates the workdir and proves it is writable (each process writes a probe)."""
    workdir = os.path.abspath(workdir)
    probe = os.path.join(workdir, f".write_probe_{jax.process_index()}")
    try:
        os.makedirs(workdir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise WorkdirError(
            f"workdir {workdir} is not writable ({e.strerror}); choose another --workdir"
        ) from None
    return workdir


def run_dir_of(checkpoint_dir: str) -> str:
    """The run's workdir, given it or its checkpoints/ folder."""
    run_dir = checkpoint_dir.rstrip("/")
    return os.path.dirname(run_dir) if os.path.basename(run_dir) == "checkpoints" else run_dir
