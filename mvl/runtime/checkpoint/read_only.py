"""Reading another run's newest checkpoint (a teacher, initial weights, the evaluation of
a finished run) through a read-only view: nothing there is cleaned up or deleted."""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from mvl.runtime.checkpoint.manager import Checkpointer
from mvl.runtime.errors import UserError


def newest_read_only(directory: str) -> tuple[Checkpointer, int]:
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
    checkpointer, step = newest_read_only(directory)
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
    checkpointer, step = newest_read_only(directory)
    config = checkpointer.json_item(step, "config")
    checkpointer.manager.close()
    return config


def load_run_record(directory: str) -> dict:
    """The `run` item (tokenizer identity, loop state) of the newest checkpoint under
    `directory`; {} for checkpoints written without one (e.g. converted weights)."""
    checkpointer, step = newest_read_only(directory)
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
