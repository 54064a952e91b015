"""A saved parameter tree compared with the one a config's model has: the entries that
differ named (instead of an orbax traceback), and the entries that match taken over."""

from __future__ import annotations

import jax

from mvl.runtime.errors import UserError


class CheckpointMismatchError(UserError, ValueError):
    """The checkpoint on disk was written by a different architecture or config."""


def shapes_by_path(tree) -> dict[str, tuple]:
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
    expected = shapes_by_path(target)
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
