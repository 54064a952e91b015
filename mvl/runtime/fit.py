"""Per-hardware settings that make a config fit: `config.fit`.

A paper's batch does not fit every machine the same way: 32768 CLIP pairs need
recomputation on 8 GPUs but not on a 256-chip pod. A config records, per hardware, the
settings that make it fit (found and checked with `python -m mvl.compile`), as
`config.fit.<hardware> = "key=value,key=value"`, where <hardware> is a topology name
with ":" written "_" (h100_1x1x8: one host of 8 H100s; v5e_16x16: a v5e slice of
16 x 16 chips; see mvl/compile/topology.py for the names).

`python -m mvl.main` applies the entry of the hardware it runs on (found from the
devices) and `python -m mvl.compile` the entry of the topology it compiles for. Keys
given on the command line win over the entry.
"""

from __future__ import annotations

from mvl import config as config_lib


def key(topology_name: str) -> str:
    """'h100:1x1x8' -> 'h100_1x1x8' (config keys cannot hold ':')."""
    return topology_name.strip().lower().replace(":", "_").replace(" ", "")


def settings(cfg, hardware: str) -> dict[str, str]:
    """The config's fit entry for `hardware` (a key() name) as {dotted key: raw value}."""
    entry = cfg.get("fit", {}).get(hardware, "")
    found = {}
    for item in filter(None, (part.strip() for part in entry.split(","))):
        dotted, sep, value = item.partition("=")
        if not sep:
            raise config_lib.ConfigError(
                f"config fit.{hardware}: {item!r} is not key=value "
                "(the entry is 'key=value,key=value')"
            )
        found[dotted.strip()] = value.strip()
    return found


def apply(cfg, hardware: str, keep=()) -> dict[str, str]:
    """Applies fit.<hardware> to `cfg` except the keys in `keep` (the command line's);
    returns what it set."""
    chosen = {k: v for k, v in settings(cfg, hardware).items() if k not in keep}
    locked = cfg.is_locked
    cfg.unlock()
    try:
        config_lib.apply_overrides(cfg, chosen)
    finally:
        if locked:
            cfg.lock()
    return chosen


# device_kind strings (what jax reports) -> mvl.compile's chip names.
_KINDS = (
    ("v5 lite", "v5e"),
    ("v5e", "v5e"),
    ("v6 lite", "v6e"),
    ("v6e", "v6e"),
    ("v5p", "v5p"),
    ("tpu v5", "v5p"),
    ("tpu v4", "v4"),
    ("h200", "h200"),
    ("h100", "h100"),
    ("a100", "a100"),
)


def hardware_of(devices, process_count: int = 1) -> str | None:
    """The key() name of the machine these devices form, or None (CPU, unknown chips)."""
    kind = devices[0].device_kind.lower()
    chip = next((name for text, name in _KINDS if text in kind), None)
    if chip is None:
        return None
    if devices[0].platform == "gpu":
        per_host = len(devices) // max(process_count, 1)
        return f"{chip}_1x{process_count}x{per_host}"
    coords = [getattr(d, "coords", None) for d in devices]
    if any(c is None for c in coords):
        return None
    slices = len({getattr(d, "slice_index", 0) for d in devices})
    shape = [max(c[i] for c in coords) + 1 for i in range(len(coords[0]))]
    if chip in ("v5e", "v6e"):
        shape = shape[:2]  # 2D tori report a third coordinate of 0
    name = f"{chip}_{'x'.join(map(str, shape))}"
    return name if slices == 1 else f"{name}_{slices}slices"
