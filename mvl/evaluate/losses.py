"""Held-out losses: every enabled objective on validation batches, with fixed masks.

`modes` (the held_out_losses evaluator's `modalities`) are modality-dropout modes to
evaluate under: "both" reports `held_out/<loss>`; "text_only" / "image_only" (single-stream models, MLIM) drop the
other modality from every example and report `held_out/<mode>/<loss>`, which shows how
much each objective leans on the other modality.

The losses run on chunks of `eval.batch_size` rows of the held-out set, in order, and
are averaged weighted by each chunk's rows. A chunk is never padded: contrastive
losses, ITM's negatives and MLM's token counts see the whole batch, so a padded copy
would change the real rows' losses. Instead a chunk whose rows do not split evenly over
the mesh's batch shards (any eval.batch_size, any last chunk) is placed whole on every
device and XLA shards the computation inside as it can; the others are batch-sharded.
So the numbers do not depend on the device count (up to floating-point reduction order).
"""

from __future__ import annotations

import jax

from mvl import mask
from mvl.evaluate import padding
from mvl.runtime import sharding
from mvl.train.step import compute_losses


def config_for_modality(cfg, mode: str):
    """`cfg` with modality dropout fixed to `mode` for every example."""
    if mode not in mask.MDO_MODES:
        raise ValueError(f"modality {mode!r}: use one of {', '.join(mask.MDO_MODES)}")
    fixed = cfg.copy_and_resolve_references()
    fixed.unlock()
    fixed.mask.modality_dropout.probabilities = tuple(float(m == mode) for m in mask.MDO_MODES)
    return fixed


class HeldOutLosses:
    def __init__(
        self, model, cfg, vocab_size: int, mesh, modes=("both",), teacher_model=None, seed=0
    ):
        self.cfg, self.mesh, self.rules = cfg, mesh, sharding.rules(cfg.mesh)
        self.rng = jax.random.PRNGKey(seed)  # the same masks at every evaluation

        def losses_under(mode):
            mode_cfg = config_for_modality(cfg, mode)

            def losses(params, batch, rng, teacher_params, teacher_head):
                mask_rng, objective_rng = jax.random.split(rng)
                teacher = (
                    None if teacher_model is None else (teacher_model, teacher_params, teacher_head)
                )
                _, metrics = compute_losses(
                    model, mode_cfg, params, batch, mask_rng, objective_rng, teacher
                )
                prefix = "" if mode == "both" else f"{mode}/"
                kept = ("loss", "/scored")
                return {prefix + k: v for k, v in metrics.items() if k.endswith(kept)}

            return jax.jit(losses, out_shardings=sharding.replicated(mesh))

        self._losses = [losses_under(mode) for mode in modes]

    def run(self, params, data: dict, teacher_params=None, teacher_head=None) -> dict[str, float]:
        """Each loss over all of `data` (the whole held-out set), in chunks of
        `eval.batch_size` rows, weighted by the rows of each chunk."""
        totals, rows = {}, 0
        for start, stop in padding.chunks(len(data["image"]), self.cfg.eval.batch_size):
            with sharding.activate(self.mesh, self.rules):
                batch = {k: self._place(data[k][start:stop]) for k in ("image", "text")}
                values = {}
                for losses in self._losses:
                    values.update(losses(params, batch, self.rng, teacher_params, teacher_head))
            for name, value in jax.device_get(values).items():
                totals[name] = totals.get(name, 0.0) + float(value) * (stop - start)
            rows += stop - start
        return {f"held_out/{k}": v / rows for k, v in without_unscored(totals).items()}

    def _place(self, rows):
        """Batch-sharded when the rows split evenly over the batch shards, else whole
        on every device (never padded: see the module docstring)."""
        even = len(rows) % padding.batch_ways(self.mesh) == 0
        where = sharding.batch_sharding(self.mesh) if even else sharding.replicated(self.mesh)
        return padding.place(rows, where)


def without_unscored(totals: dict) -> dict:
    """Drops the `scored` counts, and each loss that had nothing to score (e.g. MLM when
    the text is dropped): its 0 would read as a perfect score."""
    unscored = {k[: -len("scored")] for k, v in totals.items() if k.endswith("/scored") and not v}
    return {
        k: v
        for k, v in totals.items()
        if not k.endswith("/scored") and not any(k.startswith(prefix) for prefix in unscored)
    }
