"""Held-out losses: every enabled objective on validation batches, with fixed masks.

`eval.modalities` lists modality-dropout modes to evaluate under: "both" reports
`held_out/<loss>`; "text_only" / "image_only" (single-stream models, MLIM) drop the
other modality from every example and report `held_out/<mode>/<loss>`, which shows how
much each objective leans on the other modality.
"""

from __future__ import annotations

import jax

from mvl import masking, sharding
from mvl.evaluate import gather
from mvl.train.step import compute_losses


def config_for_modality(cfg, mode: str):
    """`cfg` with modality dropout fixed to `mode` for every example."""
    if mode not in masking.MDO_MODES:
        raise ValueError(f"config eval.modalities has {mode!r}; use {', '.join(masking.MDO_MODES)}")
    fixed = cfg.copy_and_resolve_references()
    fixed.unlock()
    fixed.mask.modality_dropout.probabilities = tuple(float(m == mode) for m in masking.MDO_MODES)
    return fixed


class HeldOutLosses:
    def __init__(self, model, cfg, vocab_size: int, mesh, teacher_model=None, seed: int = 0):
        self.cfg, self.mesh = cfg, mesh
        self.rng = jax.random.PRNGKey(seed)  # the same masks at every evaluation
        modes = tuple(cfg.eval.modalities)
        if set(modes) - {"both"} and "single_stream" not in model.components:
            raise ValueError(
                f"config eval.modalities={modes}: dropping a modality needs a single-stream "
                "model (MLIM); use ('both',)"
            )

        def losses_under(mode):
            mode_cfg = config_for_modality(cfg, mode)

            def losses(params, batch, rng, teacher_params):
                mask_rng, objective_rng = jax.random.split(rng)
                teacher = None if teacher_model is None else (teacher_model, teacher_params)
                _, metrics = compute_losses(
                    model, mode_cfg, params, batch, mask_rng, objective_rng, vocab_size, teacher
                )
                prefix = "" if mode == "both" else f"{mode}/"
                kept = ("loss", "/scored")
                return {prefix + k: v for k, v in metrics.items() if k.endswith(kept)}

            return jax.jit(losses, out_shardings=sharding.replicated(mesh))

        self._losses = [losses_under(mode) for mode in modes]

    def run(self, params, data: dict, teacher_params=None) -> dict[str, float]:
        """Mean of each loss over the full eval batches of `data` (process-local rows)."""
        size = self.cfg.eval.batch_size
        totals, count = {}, 0
        # Only chunks that are full on every process (a collective needs all of them).
        full_chunks = int(gather.row_counts(len(data["image"])).min()) // size
        for start in range(0, full_chunks * size, size):
            local = {k: data[k][start : start + size] for k in ("image", "text")}
            with sharding.activate(self.mesh):
                batch = sharding.global_batch(local, self.mesh)
                values = {}
                for losses in self._losses:
                    values.update(losses(params, batch, self.rng, teacher_params))
            for name, value in jax.device_get(values).items():
                totals[name] = totals.get(name, 0.0) + float(value)
            count += 1
        return {f"held_out/{k}": v / max(count, 1) for k, v in without_unscored(totals).items()}


def without_unscored(totals: dict) -> dict:
    """Drops the `scored` counts, and each loss that had nothing to score (e.g. MLM when
    the text is dropped): its 0 would read as a perfect score."""
    unscored = {k[: -len("scored")] for k, v in totals.items() if k.endswith("/scored") and not v}
    return {
        k: v
        for k, v in totals.items()
        if not k.endswith("/scored") and not any(k.startswith(prefix) for prefix in unscored)
    }
