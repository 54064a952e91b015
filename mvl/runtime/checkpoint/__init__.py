"""Checkpoints with orbax: the train state, the data iterator's position, the config,
and the run's host-side state (metric sums, skip counters, the tokenizer's identity).

`Checkpointer.restore_latest` returns None on a fresh workdir, so rerunning the same
command resumes. Before restoring, the saved tree is compared with the model the config
builds, and a mismatch is reported as the entries that differ, not an orbax traceback.

Integrity: orbax writes each checkpoint into a temporary directory and renames it when
complete, so a save killed mid-write never looks like a checkpoint; the leftover is
removed when the next run opens the directory (`cleanup_tmp_directories`). Just before
that rename, mvl adds a SHA-256 manifest of the files (checksums.py), so every
complete checkpoint carries one. A checkpoint
that cannot be read back or fails its manifest (a file damaged later) is moved to
`unreadable_checkpoints/` beside the checkpoints, reported, and the next newest is used.
Retention: the newest `max_to_keep`, plus the best by `best_metric` when set.
When every checkpoint is unreadable the run says so and starts from step 0.

Write failures (disk full, permission, quota) happen in orbax's background thread; the
loop asks after every step (`check_for_errors`), so the run stops one step after the
failed save with one line naming the checkpoint, the reason and the free space. The
previous checkpoint is untouched: orbax removes older ones only after a save completes.

The parts: manager.py (the Checkpointer of a run's own checkpoints), checksums.py (the
manifest), write_failures.py (a failed save named in one line), tree_match.py (a saved
tree against the model a config builds), read_only.py (another run's newest checkpoint:
a teacher, initial weights, evaluation). Callers use the names below.
"""

from mvl.runtime.checkpoint.manager import Checkpointer
from mvl.runtime.checkpoint.read_only import (
    load_params,
    load_run_record,
    load_saved_config,
    load_state,
)
from mvl.runtime.checkpoint.tree_match import (
    CheckpointMismatchError,
    describe_mismatch,
    merge_params,
)
from mvl.runtime.checkpoint.write_failures import CheckpointWriteError, write_failure_reason

__all__ = [
    "CheckpointMismatchError",
    "CheckpointWriteError",
    "Checkpointer",
    "describe_mismatch",
    "load_params",
    "load_run_record",
    "load_saved_config",
    "load_state",
    "merge_params",
    "write_failure_reason",
]
