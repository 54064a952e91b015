"""Checkpoints with orbax: the train state, the data iterator's position, and the config.

`Checkpointer.restore_latest` returns None on a fresh workdir, so rerunning the same
command resumes. Before restoring, the saved tree is compared with the model the config
builds, and a mismatch is reported as the entries that differ, not an orbax traceback.
"""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp

from mvl.errors import UserError


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint on disk was written by a different architecture or config."""


class Checkpointer:
    def __init__(self, directory: str, *, max_to_keep: int | None):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        # Handlers named up front, so a fresh process can read a checkpoint's metadata
        # (for the compatibility check) before restoring anything.
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": grain.checkpoint.CheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
            },
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator, config) -> bool:
        """Saves asynchronously (the loop decides when); returns whether it saved."""
        if step in self.manager.all_steps():
            return False
        return self.manager.save(
            step,
            force=True,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=grain.checkpoint.CheckpointSave(data_iterator),
                config=ocp.args.JsonSave(config.to_dict()),
            ),
        )

    def restore_latest(self, abstract_state, data_iterator):
        """(state, data iterator) from the newest checkpoint, or None if there is none.

        `abstract_state` holds jax.ShapeDtypeStruct leaves with the target shardings.
        """
        step = self.latest_step()
        if step is None:
            return None
        self.check_compatible(step, abstract_state)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                data=grain.checkpoint.CheckpointRestore(data_iterator),
            ),
        )
        return restored.state, restored.data

    def check_compatible(self, step: int, abstract_state):
        saved = self.manager.item_metadata(step)["state"]
        problems = describe_mismatch(_shapes_by_path(saved), _shapes_by_path(abstract_state))
        if problems:
            raise CheckpointMismatchError(
                f"checkpoint {self.directory}/{step} does not match this config's model: "
                + "; ".join(problems)
                + ". Use a fresh --workdir, or the config that wrote the checkpoint."
            )

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.close()


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


def load_params(directory: str, sharding) -> dict:
    """The newest checkpoint's parameters under `directory` (a workdir or its
    checkpoints/ folder), restored with one `sharding` for every array.

    The whole saved state is read (orbax's StandardRestore needs the full tree), then
    only `params` is kept: memory for the optimizer state is needed briefly.
    """
    nested = os.path.join(directory, "checkpoints")
    directory = nested if os.path.isdir(nested) else directory
    if not os.path.isdir(directory):
        raise UserError(f"config init.checkpoint: {directory} is not a directory")
    checkpointer = Checkpointer(directory, max_to_keep=None)
    step = checkpointer.latest_step()
    if step is None:
        raise UserError(f"config init.checkpoint: {directory} holds no checkpoint")
    saved = checkpointer.manager.item_metadata(step)["state"]
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), saved
    )
    restored = checkpointer.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
    )
    checkpointer.close()
    return restored.state["params"]


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
