"""Declaring evaluators in a method config: `add_eval(c, "probe", steps=100)`."""

from __future__ import annotations


def add_eval(c, name: str, type: str | None = None, every_steps: int | None = None, **options):
    """Declares `c.evals.<name>`: evaluator `type` (default: `name`) with its options,
    defaults filled in (mvl/evaluate/registry.py); every_steps None = eval.every_steps,
    0 = only at the end."""
    from mvl.evaluate import registry

    c.evals[name] = registry.declare(type or name, every_steps, **options)
