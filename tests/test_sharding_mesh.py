"""make_mesh lays the (data, fsdp, tensor) mesh over the physical interconnect: mesh
neighbours are torus neighbours, slices split only the data axis, CPUs keep their order.

TPU devices are stand-ins here (the attributes jax's mesh_utils reads: coords, slice,
host); tests/test_compile.py checks the same on libtpu's own abstract devices."""

import dataclasses

import jax
import ml_collections
import numpy as np
import pytest

from mvl.config import ConfigError
from mvl.runtime import sharding


@dataclasses.dataclass(frozen=True)
class FakeTpu:
    id: int
    coords: tuple
    process_index: int
    slice_index: int = 0
    core_on_chip: int = 0
    platform: str = "tpu"
    device_kind: str = "TPU v4"


def host_ordered_4x4(slice_index: int = 0, first_id: int = 0) -> list[FakeTpu]:
    """A 4x4x1 slice listed host by host (2x2 chips each), as jax.devices() lists a pod."""
    devices = []
    for host_y in range(2):
        for host_x in range(2):
            for y in range(2):
                for x in range(2):
                    coords = (2 * host_x + x, 2 * host_y + y, 0)
                    host = 4 * slice_index + 2 * host_y + host_x
                    devices.append(FakeTpu(first_id + len(devices), coords, host, slice_index))
    return devices


def torus_hops(a: FakeTpu, b: FakeTpu, size: int = 4) -> int:
    return sum(min(abs(p - q), size - abs(p - q)) for p, q in zip(a.coords, b.coords))


def rows_are_rings(grid: np.ndarray) -> bool:
    """Every run of fsdp neighbours (fixed data, tensor) is a chain of one-hop links."""
    rows = grid[:, :, 0]
    return all(torus_hops(row[i], row[i + 1]) == 1 for row in rows for i in range(len(row) - 1))


def test_fsdp_rows_follow_torus_links_where_a_plain_reshape_does_not():
    devices = host_ordered_4x4()
    grid = sharding.device_grid((4, 4, 1), devices)
    assert sorted(d.id for d in grid.flat) == list(range(16))
    assert rows_are_rings(grid)
    assert not rows_are_rings(np.asarray(devices).reshape(4, 4, 1))


def test_slices_split_only_the_data_axis():
    devices = host_ordered_4x4(0) + host_ordered_4x4(1, first_id=16)
    grid = sharding.device_grid((8, 4, 1), devices)
    slices = np.vectorize(lambda d: d.slice_index)(grid)
    assert (slices[:4] == 0).all() and (slices[4:] == 1).all()
    assert rows_are_rings(grid[:4]) and rows_are_rings(grid[4:])
    with pytest.raises(ConfigError, match="mesh.data=1: the 2 slices"):
        sharding.device_grid((1, 32, 1), devices)


def test_cpu_devices_keep_their_order():
    cfg = ml_collections.ConfigDict(dict(data=2, fsdp=-1, tensor=2))
    mesh = sharding.make_mesh(cfg)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    assert [d.id for d in mesh.devices.flat] == [d.id for d in jax.devices()]
