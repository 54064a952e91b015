"""Per-objective gradient norms: is one objective's gradient drowning another's?

Every enabled objective adds weight x loss to the total, and one global clip
(optim.grad_clip_norm) scales the sum: an objective whose gradient is a hundred times
another's takes the clip's whole budget. Every `objective_grad_norm_every` steps this
computes, for each enabled objective alone, the global norm of the gradient of its
weighted loss with respect to every parameter, on the step's own batch and masks (the
same rngs as the step, drawn from the state before it), and logs it as
`grad_norm/<objective>` (averaged over the steps it ran in a logging interval).

Cost: on those steps, one extra forward + backward pass per enabled objective (the
train step's fused pass is not reused, so the norms stay independent of it).
Microbatching is not reproduced: the norms are of the whole batch's loss.
"""

from __future__ import annotations

import jax
import optax

from mvl import mask, objectives
from mvl.train.forward import Forward

PREFIX = "grad_norm/"


def step_rngs(state):
    """(mask rng, objective rng) exactly as the train step draws them for this state."""
    return jax.random.split(jax.random.fold_in(state.rng, state.step))


def objective_losses(model, cfg, params, batch, mask_rng, objective_rng):
    """{objective: weighted loss} on one shared Forward (masks drawn once)."""
    masks = mask.make_masks(cfg, batch, mask_rng, model.vocab_size, model.special)
    forward = Forward(model, params, batch, masks, objective_rng, train=True)
    return {
        name: weight * objectives.get(name).loss(forward, cfg.objectives[name])[0]
        for name, weight in objectives.enabled(cfg.objectives).items()
    }


def make_objective_grad_norms(model, cfg):
    """(params, batch, mask rng, objective rng) -> {grad_norm/<objective>: norm}.
    Teacher-based objectives are not supported (their Forward needs the teacher)."""

    def norms(params, batch, mask_rng, objective_rng):
        result = {}
        for name in objectives.enabled(cfg.objectives):

            def one_loss(p, name=name):
                return objective_losses(model, cfg, p, batch, mask_rng, objective_rng)[name]

            result[PREFIX + name] = optax.global_norm(jax.grad(one_loss)(params))
        return result

    return jax.jit(norms)


class ObjectiveGradNorms:
    """The train loop's hook: `maybe(step, state, batch)` -> {} or this step's norms."""

    def __init__(self, trainer, cfg):
        self.every = int(cfg.get("objective_grad_norm_every", 0))
        self._fn = None
        if self.every:
            if cfg.teacher.kind != "none":
                raise ValueError(
                    f"config objective_grad_norm_every={self.every}: not available with a "
                    f"teacher (teacher.kind={cfg.teacher.kind!r}); set it to 0"
                )
            self._fn = make_objective_grad_norms(trainer.model, cfg)
        self.trainer = trainer

    def maybe(self, step: int, state, batch) -> dict:
        if not self.every or step % self.every:
            return {}
        from mvl.runtime import sharding

        mask_rng, objective_rng = step_rngs(state)
        with sharding.activate(self.trainer.mesh, self.trainer.rules):
            return self._fn(state.params, batch, mask_rng, objective_rng)
