"""`--search`: compile a config under several mesh layouts (data x fsdp x tensor) and
remat policies, and rank those that fit by roofline step time.

Each candidate is a full compile (minutes for a ViT-B on a TPU pod topology), so the
candidates come in a fixed order of promise and `limit` caps how many are compiled:
full FSDP first (parameters and optimizer state sharded over every chip of a slice,
the usual winner for ViT-B-sized models), then less sharding, tensor parallelism, and
the remat policies that trade FLOPs for memory.
"""

from __future__ import annotations

import itertools


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


REMAT_LIGHT_TO_HEAVY = ("none", "dots", "full")


def candidates(cfg, num_devices: int, num_slices: int = 1, own_fits=None) -> list[dict]:
    """[{mesh.data, mesh.fsdp, mesh.tensor, model.remat}], the config's own settings
    first (its fit entry for the target applied), then the most promising others.

    Once the own settings are compiled (`own_fits` known), the next candidate is their
    neighbour: the next lighter remat policy when they fit (a faster step if it still
    fits), the next heavier one when they do not.
    """
    own = _own(cfg, num_devices)
    others = _others(cfg, num_devices, num_slices)
    if own is not None and own_fits is not None:
        place = REMAT_LIGHT_TO_HEAVY.index(own["model.remat"]) + (-1 if own_fits else 1)
        if 0 <= place < len(REMAT_LIGHT_TO_HEAVY):
            neighbour = {**own, "model.remat": REMAT_LIGHT_TO_HEAVY[place]}
            others = [neighbour] + [c for c in others if c != neighbour]
    return ([own] if own else []) + [c for c in others if c != own]


def _own(cfg, num_devices: int) -> dict | None:
    from mvl.runtime.sharding import mesh_shape

    try:
        data, fsdp, tensor = mesh_shape(cfg.mesh, num_devices)
    except Exception:  # the config's mesh does not divide this topology
        return None
    if cfg.batch_size % (data * fsdp):
        return None
    layout = {"mesh.data": data, "mesh.fsdp": fsdp, "mesh.tensor": tensor}
    return {**layout, "model.remat": cfg.model.remat}


def _others(cfg, num_devices: int, num_slices: int) -> list[dict]:
    heads = cfg.model.image.num_heads
    per_slice = num_devices // num_slices
    layouts = []
    for tensor in (1, 2, 4):
        if per_slice % tensor or heads % tensor:
            continue
        for fsdp in sorted(_divisors(per_slice // tensor), reverse=True):
            data = num_devices // (tensor * fsdp)
            if cfg.batch_size % (data * fsdp) == 0 and data % num_slices == 0:
                layouts.append({"mesh.data": data, "mesh.fsdp": fsdp, "mesh.tensor": tensor})
    # A few fsdp sizes of each tensor width: all of a slice, a quarter, none.
    picked = []
    for tensor in (1, 2, 4):
        same = [lay for lay in layouts if lay["mesh.tensor"] == tensor]
        for index in (0, len(same) // 2, len(same) - 1):
            if same and same[index] not in picked:
                picked.append(same[index])
    remats = [cfg.model.remat] + [r for r in ("none", "dots", "full") if r != cfg.model.remat]
    ordered = []
    for remat, layout in itertools.product(remats, picked):
        ordered.append({**layout, "model.remat": remat})
    # Interleave so a small limit sees both more sharding and more recomputation.
    first = [c for c in ordered if c["model.remat"] == remats[0]]
    rest = [c for c in ordered if c["model.remat"] != remats[0]]
    return first[:2] + rest[:2] + first[2:] + rest[2:]


def rank(results: list[dict]) -> list[dict]:
    """Fitting results by roofline step time (then memory), then the rest by memory."""
    fitting = sorted(
        (r for r in results if r["fits"]),
        key=lambda r: (r["roofline_step_s"], r["per_chip_bytes"]["total"]),
    )
    others = sorted(
        (r for r in results if not r["fits"]), key=lambda r: r["per_chip_bytes"]["total"]
    )
    return fitting + others
