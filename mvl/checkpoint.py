"""Checkpoints with orbax: the train state, the data iterator's position, the config,
and the run's host-side state (metric sums, skip counters, the tokenizer's identity).

`Checkpointer.restore_latest` returns None on a fresh workdir, so rerunning the same
command resumes. Before restoring, the saved tree is compared with the model the config
builds, and a mismatch is reported as the entries that differ, not an orbax traceback.

Integrity: orbax writes each checkpoint into a temporary directory and renames it when
complete, so a save killed mid-write never looks like a checkpoint; the leftover is
removed when the next run opens the directory (`cleanup_tmp_directories`). Just before
that rename, mvl adds a SHA-256 manifest of the files (mvl/checksums.py), so every
complete checkpoint carries one. A checkpoint
that cannot be read back or fails its manifest (a file damaged later) is moved to
`unreadable_checkpoints/` beside the checkpoints, reported, and the next newest is used.
Retention: the newest `max_to_keep`, plus the best by `best_metric` when set.
When every checkpoint is unreadable the run says so and starts from step 0.

Write failures (disk full, permission, quota) happen in orbax's background thread; the
loop asks after every step (`check_for_errors`), so the run stops one step after the
failed save with one line naming the checkpoint, the reason and the free space. The
previous checkpoint is untouched: orbax removes older ones only after a save completes.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import shutil
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from mvl import checksums
from mvl.errors import RunFailed, UserError


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint on disk was written by a different architecture or config."""


class UnreadableCheckpoint(Exception):
    """A complete checkpoint whose files cannot be read back."""


class CheckpointWriteError(RunFailed, OSError):
    """A checkpoint could not be written (disk full, no permission, quota)."""


# errno values and the words storage libraries (tensorstore, gcsfs) use for them.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
WRITE_FAILURE_WORDS = (
    "no space left",
    "resource_exhausted",
    "disk quota",
    "permission denied",
    "read-only file system",
    "file too large",
)


class _ToldOtherwise(logging.Filter):
    """Drops orbax log records that mvl tells the user better or that say nothing: a
    failed background save's tracebacks (twice; the loop says it in one line,
    CheckpointWriteError), and the notes that a read-only view (another run's
    checkpoints, opened to read) is read-only. Any other orbax warning still prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and write_failure_reason(error) is not None:
            return False
        return not any(note in record.getMessage() for note in READ_ONLY_NOTES)


READ_ONLY_NOTES = ("read_only=True, setting save_interval_steps=0", "Given directory is read only")


def _install_log_filter():
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _ToldOtherwise) for f in absl_logger.filters):
        absl_logger.addFilter(_ToldOtherwise())


class Checkpointer:
    def __init__(
        self,
        directory: str,
        *,
        max_to_keep: int | None,
        best_metric: str = "",
        best_mode: str = "max",
        read_only: bool = False,
    ):
        self.directory = os.path.abspath(directory)
        self.best_metric = best_metric
        _install_log_filter()
        self._in_flight: int | None = None  # the step being saved in the background
        keep = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
        best_fn = None
        if best_metric:
            best_fn = lambda metrics: metrics[best_metric]  # noqa: E731
            keep.append(
                ocp.checkpoint_managers.BestN(
                    get_metric_fn=best_fn,
                    reverse=best_mode == "min",
                    n=1,
                    keep_checkpoints_without_metrics=False,
                )
            )
        options = ocp.CheckpointManagerOptions(
            create=not read_only,
            read_only=read_only,  # another run's checkpoints: never clean up or delete
            cleanup_tmp_directories=not read_only,  # leftovers of a save killed mid-write
            best_fn=best_fn,  # orbax writes a checkpoint's metrics only when this is set
            best_mode=best_mode,
            preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(keep),
            # Runs in orbax's save thread once every file is written, before the
            # temporary folder is renamed: the manifest is committed with the checkpoint.
            async_options=ocp.AsyncOptions(post_finalization_callback=self._write_manifest),
        )
        # Handlers named up front, so a fresh process can read a checkpoint's metadata
        # (for the compatibility check) before restoring anything.
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": grain.checkpoint.CheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
                "run": ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator, config, run: dict, metrics=None) -> bool:
        """Saves asynchronously (the loop decides when); returns whether it saved.

        `run`: JSON-able host state restored with the checkpoint. `metrics`: values
        reported at this step, of which `best_metric` ranks checkpoints.
        """
        if step in self.manager.all_steps():
            return False
        ranked = (
            {self.best_metric: metrics[self.best_metric]} if self.best_metric and metrics else None
        )
        self.wait()  # one save in flight at a time (and the last one's failure named)
        self._in_flight = step
        with self._write_failures_named():
            return self.manager.save(
                step,
                force=True,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    data=grain.checkpoint.CheckpointSave(data_iterator),
                    config=ocp.args.JsonSave(config.to_dict()),
                    run=ocp.args.JsonSave(run),
                ),
                metrics=ranked,
            )

    def check_for_errors(self):
        """Raises CheckpointWriteError if the save in the background has failed."""
        with self._write_failures_named():
            self.manager.check_for_errors()

    @contextlib.contextmanager
    def _write_failures_named(self):
        try:
            yield
        except Exception as e:  # noqa: BLE001 -- only write failures are translated
            reason = write_failure_reason(e)
            if reason is None:
                raise
            raise CheckpointWriteError(self._describe_write_failure(reason)) from e

    def _describe_write_failure(self, reason: str) -> str:
        target = f"{self.directory}/{self._in_flight}"
        try:
            free = f"{shutil.disk_usage(self.directory).free / 2**20:.1f} MiB free there"
        except OSError:
            free = "free space unknown"
        previous = [s for s in self.manager.all_steps() if s != self._in_flight]
        kept = (
            f"the previous checkpoint {self.directory}/{max(previous)} is intact"
            if previous
            else "no earlier checkpoint exists"
        )
        return (
            f"cannot write checkpoint {target}: {reason} ({free}); {kept}. Free space or "
            "fix the permissions (or choose another --workdir), then rerun the same "
            "command to resume"
        )

    def save_params(self, step: int, params, config, run: dict):
        """A checkpoint of parameters alone, as `{"params": ...}` (imported weights: no
        optimizer state or data position); `load_params` and `init.checkpoint` read it."""
        self._in_flight = step
        self.manager.save(
            step,
            force=True,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": params}),
                config=ocp.args.JsonSave(config.to_dict()),
                run=ocp.args.JsonSave(run),
            ),
        )
        self.manager.wait_until_finished()

    def json_item(self, step: int, name: str) -> dict:
        """One small JSON item saved at `step` ("run" or "config"), read alone."""
        restored = self.manager.restore(
            step, args=ocp.args.Composite(**{name: ocp.args.JsonRestore()})
        )
        return restored[name]

    def restore_latest(self, abstract_state, data_iterator):
        """(step, state, data iterator, run dict) from the newest readable checkpoint, or
        None if there is none.

        `abstract_state` holds jax.ShapeDtypeStruct leaves with the target shardings. A
        checkpoint of another architecture is an error (CheckpointMismatchError); one
        whose files are damaged is set aside and the next newest is tried.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        for step in steps:
            try:
                restored = self._restore(step, abstract_state, data_iterator)
            except UnreadableCheckpoint as e:
                self._set_aside(step, e.__cause__ or e)
                continue
            return step, restored.state, restored.data, restored.run
        if steps:
            print(
                f"warning: no readable checkpoint in {self.directory} (all {len(steps)} "
                "moved to unreadable_checkpoints/): starting from step 0",
                flush=True,
            )
        return None

    def _restore(self, step: int, abstract_state, data_iterator):
        def verified_metadata():
            if not checksums.verify(os.path.join(self.directory, str(step))):
                print(
                    f"note: checkpoint {self.directory}/{step} has no checksums (saved "
                    "just before the process ended?): restoring it unverified",
                    flush=True,
                )
            return self.manager.item_metadata(step)["state"]

        saved = _read_on_every_process(step, verified_metadata)
        self.check_compatible(step, abstract_state, saved)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            data=grain.checkpoint.CheckpointRestore(data_iterator),
            run=ocp.args.JsonRestore(),
        )
        return _read_on_every_process(step, lambda: self.manager.restore(step, args=args))

    def _set_aside(self, step: int, error: BaseException):
        """Moves a damaged checkpoint out of the way (kept for inspection, not deleted)."""
        aside = os.path.join(os.path.dirname(self.directory), "unreadable_checkpoints")
        target = os.path.join(aside, f"{step}-{int(time.time())}")
        if jax.process_index() == 0:
            os.makedirs(aside, exist_ok=True)
            os.rename(os.path.join(self.directory, str(step)), target)
        _on_every_process(True)  # every process waits for the move
        self.manager.reload()
        print(
            f"warning: checkpoint {self.directory}/{step} is unreadable "
            f"({type(error).__name__}: {str(error)[:300]}); moved to {target}, "
            "trying the previous one",
            flush=True,
        )

    def check_compatible(self, step: int, abstract_state, saved):
        problems = describe_mismatch(_shapes_by_path(saved), _shapes_by_path(abstract_state))
        if problems:
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step} does not match this config's model: "
                + "; ".join(problems)
                + ". Use a fresh --workdir, or the config that wrote the checkpoint."
            )

    def _write_manifest(self):
        """The checksum manifest of the step being saved, in its temporary folder (or
        its final one, where orbax commits by marker file instead of by rename)."""
        if jax.process_index() != 0 or self._in_flight is None:
            return
        pending = glob.glob(
            os.path.join(self.directory, f"{self._in_flight}.orbax-checkpoint-tmp*")
        )
        final = os.path.join(self.directory, str(self._in_flight))
        checksums.write_manifest(pending[0] if len(pending) == 1 else final)

    def wait(self):
        with self._write_failures_named():
            self.manager.wait_until_finished()

    def close(self):
        self.manager.close()


def write_failure_reason(error: BaseException) -> str | None:
    """"No space left on device" (and the like) when `error` or an exception it was
    raised from is a failure to write storage; None for anything else (a bug)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            return os.strerror(error.errno)
        text = str(error).lower()
        for words in WRITE_FAILURE_WORDS:
            if words in text:
                return "disk full (RESOURCE_EXHAUSTED)" if words == "resource_exhausted" else words
        error = error.__cause__ or error.__context__
    return None


def _read_on_every_process(step: int, read):
    """`read()`, or UnreadableCheckpoint on every process when it failed on any (any
    failure to read is damage; the processes agree, so none waits for the others)."""
    try:
        result, error = read(), None
    except Exception as e:  # noqa: BLE001
        result, error = None, e
    if not _on_every_process(error is None):
        raise UnreadableCheckpoint(f"step {step}") from error
    return result


def _on_every_process(ok: bool) -> bool:
    """True when `ok` holds on every process (a barrier on several processes)."""
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def _shapes_by_path(tree) -> dict[str, tuple]:
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {
        jax.tree_util.keystr(path, simple=True, separator="/"): tuple(leaf.shape)
        for path, leaf in leaves
    }


def describe_mismatch(saved: dict, expected: dict, limit: int = 4) -> list[str]:
    """Human-readable differences between two {path: shape} maps (first few of each kind)."""
    problems = []
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = sorted(p for p in set(saved) & set(expected) if saved[p] != expected[p])

    def listed(paths, show):
        more = f" (+{len(paths) - limit} more)" if len(paths) > limit else ""
        return ", ".join(show(p) for p in paths[:limit]) + more

    if missing:
        problems.append(f"missing in checkpoint: {listed(missing, str)}")
    if unexpected:
        problems.append(f"not in this model: {listed(unexpected, str)}")
    if reshaped:
        problems.append(
            "shape differs: "
            + listed(reshaped, lambda p: f"{p} saved {saved[p]} vs model {expected[p]}")
        )
    return problems


def _newest_read_only(directory: str) -> tuple[Checkpointer, int]:
    """A read-only view of the newest checkpoint under `directory` (a workdir or its
    checkpoints/ folder): nothing there is cleaned up or deleted."""
    nested = os.path.join(directory, "checkpoints")
    directory = nested if os.path.isdir(nested) else directory
    if not os.path.isdir(directory):
        raise UserError(f"{directory} is not a directory")
    checkpointer = Checkpointer(directory, max_to_keep=None, read_only=True)
    step = checkpointer.latest_step()
    if step is None:
        raise UserError(f"{directory} holds no checkpoint")
    return checkpointer, step


def load_state(directory: str, sharding) -> tuple[int, dict]:
    """(step, train state as nested dicts) of the newest checkpoint under `directory`,
    every array restored with one `sharding`."""
    checkpointer, step = _newest_read_only(directory)
    saved = checkpointer.manager.item_metadata(step)["state"]
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), saved
    )
    restored = checkpointer.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
    )
    checkpointer.manager.close()
    return step, restored.state


def load_saved_config(directory: str) -> dict:
    """The config (as a dict) the newest checkpoint under `directory` was written with."""
    checkpointer, step = _newest_read_only(directory)
    config = checkpointer.json_item(step, "config")
    checkpointer.manager.close()
    return config


def load_run_record(directory: str) -> dict:
    """The `run` item (tokenizer identity, loop state) of the newest checkpoint under
    `directory`; {} for checkpoints written without one (e.g. converted weights)."""
    checkpointer, step = _newest_read_only(directory)
    try:
        return checkpointer.json_item(step, "run")
    except Exception:  # noqa: BLE001 -- no run item: nothing recorded to compare with
        return {}
    finally:
        checkpointer.manager.close()


def load_params(directory: str, sharding, key: str = "init.checkpoint") -> dict:
    """The newest checkpoint's parameters (see load_state). The whole saved state is
    read (orbax's StandardRestore needs the full tree), then only `params` is kept:
    memory for the optimizer state is needed briefly."""
    try:
        return load_state(directory, sharding)[1]["params"]
    except UserError as e:
        raise UserError(f"config {key}: {e}") from None


def merge_params(target, source, strict: bool, where: str):
    """`target` with every entry that `source` has at the same path and shape replaced.

    With `strict`, any entry of `target` that `source` lacks or shapes differently is an
    error naming it; otherwise those entries keep their fresh initialisation.
    Returns (merged params, number of arrays taken from `source`).
    """
    by_path = {
        jax.tree_util.keystr(p, simple=True, separator="/"): v
        for p, v in jax.tree_util.tree_leaves_with_path(source)
    }
    expected = _shapes_by_path(target)
    problems = describe_mismatch({p: tuple(v.shape) for p, v in by_path.items()}, expected)
    taken = [p for p in expected if p in by_path and tuple(by_path[p].shape) == expected[p]]
    if strict and any(not p.startswith("not in this model") for p in problems):
        raise CheckpointMismatchError(
            f"{where} does not match this config's model: " + "; ".join(problems)
        )

    def pick(path, leaf):
        key = jax.tree_util.keystr(path, simple=True, separator="/")
        return by_path[key] if key in taken else leaf

    return jax.tree_util.tree_map_with_path(pick, target), len(taken)
