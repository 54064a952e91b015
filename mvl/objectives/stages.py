"""Staged objectives: an objective that joins training part way through.

Any objective's section may say when it starts, by one of
  objectives.<name>.start_step      the step counter value from which it counts, or
  objectives.<name>.start_fraction  the same as a share of total_steps (SigLIP 2 adds
                                    self-distillation and masked prediction for the last
                                    20% of training: start_fraction=0.8).
Before its start the objective's branch of a `lax.cond` on the train state's step
counter is skipped, so it adds exactly zero to the loss and the gradient; from its start
it adds weight * loss. A skipped branch still hands the backward pass zero-filled
buffers of its residuals' shapes (SigLIP 2's demo: 1.2 s a step before the stage vs
1.0 s with the two staged objectives off, and 3.1 s once they run). The stage is a function of `state.step` only, so a run
resumed on either side of the start trains exactly as an uninterrupted one. Each step
reports `stage/<name>` (0 before, 1 from the start) and the loop prints a line when a
staged objective starts. Evaluation (step None) always computes every objective.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mvl.config import ConfigError

KEYS = ("start_step", "start_fraction")


def start_step(cfg, name: str) -> int:
    """The first value of state.step at which objective `name` contributes (0: always)."""
    section = cfg.objectives[name]
    if section.get("start_step") is not None:
        return int(section.start_step)
    fraction = section.get("start_fraction")
    if fraction:
        return int(round(fraction * cfg.total_steps))
    return 0


def staged(cfg) -> dict[str, int]:
    """{name: start step} of the enabled objectives that start after step 0."""
    from mvl import objectives

    starts = {name: start_step(cfg, name) for name in objectives.enabled(cfg.objectives)}
    return {name: start for name, start in starts.items() if start > 0}


def validate(cfg) -> None:
    """At most one of the two keys per objective, in range (before anything is built)."""
    from mvl import objectives

    for name in objectives.enabled(cfg.objectives):
        section = cfg.objectives[name]
        step, fraction = section.get("start_step"), section.get("start_fraction")
        where = f"objectives.{name}"
        if step is not None and fraction is not None:
            raise ConfigError(
                f"config {where}: give start_step={step!r} or start_fraction={fraction!r}, not both"
            )
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise ConfigError(f"config {where}.start_step={step!r}: must be an int >= 0")
        if fraction is not None and not (
            isinstance(fraction, (int, float)) and 0.0 <= fraction < 1.0
        ):
            raise ConfigError(f"config {where}.start_fraction={fraction!r}: must be in [0, 1)")
        if step is not None and step >= cfg.total_steps:
            raise ConfigError(
                f"config {where}.start_step={step!r}: the objective would never run "
                f"(total_steps={cfg.total_steps})"
            )


def staged_loss(forward, objective, section, start: int, step):
    """(loss, metrics) of `objective` at `step` (a traced state.step or None): zero and
    zero metrics before `start`, the objective's own from it."""
    if step is None or start <= 0 or forward.params is None:
        # evaluation, an unstaged objective, or Module.init (which must create the
        # objective's parameters: no lax.cond around flax calls there)
        return objective.loss(forward, section)

    def run():
        # Passes computed inside the branch must not leak into the shared cache (they
        # are the branch's tracers); passes computed before are read as constants.
        saved = dict(forward._cache)
        try:
            return objective.loss(forward, section)
        finally:
            forward._cache = saved

    shapes = jax.eval_shape(run)

    def skip():
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    return jax.lax.cond(step >= start, run, skip)


def announce(cfg, state_step: int, resumed: bool = False) -> None:
    """Prints the line of each staged objective starting at `state_step` (and, on a
    resume past its start, that it is already on)."""
    for name, start in staged(cfg).items():
        if state_step == start:
            print(f"[stage] objective {name} starts at step {start}", flush=True)
        elif resumed and state_step > start:
            print(f"[stage] objective {name} is on (started at step {start})", flush=True)
