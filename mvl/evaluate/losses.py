"""Held-out losses: every enabled objective on validation batches, with fixed masks."""

from __future__ import annotations

import jax

from mvl import sharding
from mvl.train.step import compute_losses


class HeldOutLosses:
    def __init__(self, model, cfg, vocab_size: int, mesh, teacher_model=None, seed: int = 0):
        self.cfg, self.mesh = cfg, mesh
        self.rng = jax.random.PRNGKey(seed)  # the same masks at every evaluation

        def losses(params, batch, rng, teacher_params):
            mask_rng, objective_rng = jax.random.split(rng)
            teacher = None if teacher_model is None else (teacher_model, teacher_params)
            _, metrics = compute_losses(
                model, cfg, params, batch, mask_rng, objective_rng, vocab_size, teacher
            )
            return {k: v for k, v in metrics.items() if k.endswith("loss")}

        self._losses = jax.jit(losses, out_shardings=sharding.replicated(mesh))

    def run(self, params, data: dict, teacher_params=None) -> dict[str, float]:
        """Mean of each loss over the full eval batches of `data` (process-local rows)."""
        size = self.cfg.eval.batch_size
        totals, count = {}, 0
        for start in range(0, len(data["image"]) - size + 1, size):
            local = {k: data[k][start : start + size] for k in ("image", "text")}
            with sharding.activate(self.mesh):
                batch = sharding.global_batch(local, self.mesh)
                values = self._losses(params, batch, self.rng, teacher_params)
            for name, value in jax.device_get(values).items():
                totals[name] = totals.get(name, 0.0) + float(value)
            count += 1
        return {f"held_out/{k}": v / max(count, 1) for k, v in totals.items()}
