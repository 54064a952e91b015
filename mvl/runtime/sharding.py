"""One mesh always: mesh from the config, logical-axis rules, state and batch shardings.

A single CPU is a 1x1x1 mesh; 8 simulated devices and a TPU pod run the same code.
Parameters carry logical names (mvl/models/layers.py); `rules` map them to the mesh
axes `data`, `fsdp` and `tensor`. The batch is split over `data` and `fsdp` together.
"""

from __future__ import annotations

import contextlib
import math

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from mvl.config.errors import ConfigError
from mvl.config.mesh_section import BATCH_AXES, DEFAULT_RULES, MESH_AXES

KNOWN_LOGICAL_AXES = tuple(name for name, _ in DEFAULT_RULES)


def rules(mesh_cfg) -> tuple:
    """The config's `mesh.rules` as flax wants them (a saved config's JSON lists made
    tuples again; a config saved before the key existed: DEFAULT_RULES), checked: every
    logical axis one the models name, every target a mesh axis, a tuple of them or None."""
    given = mesh_cfg.get("rules", DEFAULT_RULES)
    checked = []
    for rule in given:
        if not isinstance(rule, (tuple, list)) or len(rule) != 2:
            raise ConfigError(
                f"config mesh.rules: {rule!r} is not a (logical axis, mesh axis) pair"
            )
        name, target = rule
        if name not in KNOWN_LOGICAL_AXES:
            raise ConfigError(
                f"config mesh.rules: unknown logical axis {name!r}; the models name "
                f"{', '.join(KNOWN_LOGICAL_AXES)}"
            )
        targets = target if isinstance(target, (tuple, list)) else (target,)
        unknown = [t for t in targets if t is not None and t not in MESH_AXES]
        if unknown or (None in targets and len(targets) > 1):
            raise ConfigError(
                f"config mesh.rules: ({name!r}, {target!r}): map to one of "
                f"{', '.join(MESH_AXES)}, a tuple of them, or None (replicated)"
            )
        checked.append((name, tuple(targets) if isinstance(target, (tuple, list)) else target))
    return tuple(checked)


def mesh_shape(mesh_cfg, num_devices: int) -> tuple[int, ...]:
    """Sizes of (data, fsdp, tensor); one -1 fills the devices left over."""
    sizes = [int(mesh_cfg[axis]) for axis in MESH_AXES]
    unknown = [axis for axis, size in zip(MESH_AXES, sizes) if size == -1]
    if len(unknown) > 1:
        raise ValueError(f"config mesh: only one axis may be -1, got {unknown}")
    known = math.prod(s for s in sizes if s != -1)
    if any(s == 0 or s < -1 for s in sizes) or num_devices % known:
        raise ValueError(
            f"config mesh {dict(zip(MESH_AXES, sizes))}: sizes must be positive "
            f"and divide the {num_devices} devices"
        )
    sizes = [num_devices // known if s == -1 else s for s in sizes]
    if math.prod(sizes) != num_devices:
        raise ValueError(
            f"config mesh {dict(zip(MESH_AXES, sizes))} uses {math.prod(sizes)} "
            f"devices but {num_devices} are present; set one axis to -1"
        )
    return tuple(sizes)


def make_mesh(mesh_cfg, devices=None) -> Mesh:
    """The (data, fsdp, tensor) mesh laid over the devices' physical topology.

    A plain reshape of the device list can put mesh neighbours far apart on a TPU torus,
    so FSDP's all-gathers would cross it the long way; `mesh_utils` places each mesh axis
    along physical links (tensor innermost: it talks most). Devices of several slices
    (TPU multi-slice, linked by the slower data-centre network) get a hybrid mesh: the
    slices split the `data` axis, the only one whose traffic (one gradient reduction per
    step) tolerates that network. CPU devices keep their plain order.
    """
    devices = jax.devices() if devices is None else list(devices)
    shape = mesh_shape(mesh_cfg, len(devices))
    return Mesh(device_grid(shape, devices), MESH_AXES)


def num_slices(devices) -> int:
    return len({getattr(d, "slice_index", 0) for d in devices})


def device_grid(shape: tuple[int, ...], devices) -> np.ndarray:
    """`devices` as an array of `shape` that follows the physical interconnect."""
    from jax.experimental import mesh_utils

    slices = num_slices(devices)
    if slices == 1:
        return mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    if shape[0] % slices:
        raise ConfigError(
            f"config mesh.data={shape[0]}: the {slices} slices split the data axis, "
            f"so it must be a multiple of {slices}"
        )
    per_slice = (shape[0] // slices,) + tuple(shape[1:])
    return mesh_utils.create_hybrid_device_mesh(
        per_slice, (slices,) + (1,) * (len(shape) - 1), devices, allow_split_physical_axes=True
    )


def logical_shardings(boxed_tree, mesh: Mesh, rules=DEFAULT_RULES):
    """NamedShardings for a tree whose leaves may be flax LogicallyPartitioned boxes."""
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_size_per_process(global_batch_size: int, mesh: Mesh) -> int:
    data_parallel = mesh.shape["data"] * mesh.shape["fsdp"]
    if global_batch_size % data_parallel:
        raise ValueError(
            f"batch_size {global_batch_size} is not divisible by the mesh's "
            f"data x fsdp = {data_parallel} devices"
        )
    if global_batch_size % jax.process_count():
        raise ValueError(
            f"batch_size {global_batch_size} is not divisible by the "
            f"{jax.process_count()} processes"
        )
    return global_batch_size // jax.process_count()


def global_batch(local_batch: dict, mesh: Mesh) -> dict:
    """Host-local numpy arrays -> global jax.Arrays sharded over the batch axes."""
    sharding = batch_sharding(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for key, value in local_batch.items()
    }


@contextlib.contextmanager
def activate(mesh: Mesh, rules=DEFAULT_RULES):
    """Makes `mesh` and the logical rules current, so the models' activation constraints
    (`nn.with_logical_constraint`) apply while a function is traced."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield
