"""The Checkpointer: a run's own checkpoints with orbax (the package docstring,
mvl/runtime/checkpoint/__init__.py, says what is saved and how damage is handled)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import time

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from mvl.runtime.checkpoint import checksums
from mvl.runtime.checkpoint.tree_match import (
    CheckpointMismatchError,
    describe_mismatch,
    shapes_by_path,
)
from mvl.runtime.checkpoint.write_failures import (
    CheckpointWriteError,
    install_log_filter,
    write_failure_reason,
)


class UnreadableCheckpoint(Exception):
    """A complete checkpoint whose files cannot be read back."""


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
        install_log_filter()
        self._in_flight: int | None = None  # the step being saved in the background
        keep = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
        best_fn = None
        if best_metric:
            best_fn = lambda metrics: metrics[best_metric]
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
        except Exception as e:
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
        problems = describe_mismatch(shapes_by_path(saved), shapes_by_path(abstract_state))
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
