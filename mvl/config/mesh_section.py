"""The `mesh` section: the device mesh's axis sizes and the logical-axis rules that map
the models' named dimensions onto it (mvl/runtime/sharding.py applies them)."""

from __future__ import annotations

import ml_collections

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# logical name -> mesh axis, a tuple of mesh axes, or None (replicated). A mesh axis
# already used by an earlier dimension of the same array is skipped by flax, so
# ("batch", "embed") activations keep `fsdp` for the batch.
DEFAULT_RULES = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("vocab", "tensor"),
    ("act_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_embed", None),
    ("kv", None),
    ("length", None),
    ("layers", None),  # the stacked-layer axis of scanned blocks
)


def mesh_section() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            # Axis sizes; one -1 takes the devices left over.
            data=-1,
            fsdp=1,
            tensor=1,
            # ((logical axis, mesh axis | (mesh axes) | None), ...): every logical
            # axis the models name (mvl/models/) must have a rule; e.g. pure data
            # parallelism: --config.mesh.rules="(('batch', ('data', 'fsdp')), ('embed',
            # None), ...)".
            rules=DEFAULT_RULES,
        )
    )
