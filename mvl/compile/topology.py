"""Named accelerator topologies -> abstract devices that XLA compiles for, with no
accelerator present (jax.experimental.topologies).

Accepted names:
- TPU: CHIP:SHAPE as libtpu names slices (`v5e:16x16`, `v4:2x2x4`, `v5p:4x4x4`,
  `v6e:8x8`), or Cloud's accelerator types (`v5e-256`, `v4-32`, `v5p-128`, `v6e-64`:
  the number counts chips on v5e / v6e and TensorCores, two per chip, on v4 / v5p),
  translated to the slice shape Cloud builds for that size. `num_slices` > 1 links
  several slices over the data-centre network (multi-slice).
- GPU: CHIP:SLICESxHOSTSxGPUS, e.g. `h100:1x1x8` (one host of 8 H100s),
  `a100:1x2x8` (two hosts); chips a100, h100, h200.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

from mvl.compile.chips import CHIPS, GPU_CHIPS, TPU_CHIPS
from mvl.runtime.errors import UserError

ACCEPTED = (
    "TPU v4|v5e|v5p|v6e as CHIP:AxB[xC] (v5e:16x16, v4:2x2x4, v5p:4x4x4) or CHIP-N "
    "(v5e-256, v5p-128); GPU a100|h100|h200 as CHIP:SLICESxHOSTSxGPUS (h100:1x1x8)"
)
# Slice shapes Cloud builds, smallest first: v5e / v6e are 2D tori, v4 / v5p 3D.
_SHAPES_2D = ((1, 1), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16))
_SHAPES_3D = (
    (2, 2, 1), (2, 2, 2), (2, 2, 4), (2, 4, 4), (4, 4, 4), (4, 4, 8), (4, 8, 8),
    (8, 8, 8), (8, 8, 16), (8, 16, 16), (16, 16, 16), (16, 16, 24), (16, 24, 24),
)  # fmt: skip
MEGACORE = ("v4", "v5p")  # two TensorCores per chip, one device


class TopologyError(UserError):
    """A topology or chip name mvl.compile does not know."""


@dataclasses.dataclass(frozen=True)
class Target:
    chip: str
    platform: str  # "tpu" | "gpu"
    shape: tuple[int, ...]  # TPU: the slice's chip grid; GPU: (slices, hosts, gpus)
    num_slices: int = 1

    @property
    def name(self) -> str:
        dims = "x".join(map(str, self.shape))
        slices = f" x {self.num_slices} slices" if self.num_slices > 1 else ""
        return f"{self.chip}:{dims}{slices}"

    @property
    def fit_key(self) -> str:
        """The name of this hardware in a config's `fit` section (mvl/runtime/fit.py)."""
        dims = "x".join(map(str, self.shape))
        return f"{self.chip}_{dims}" + (f"_{self.num_slices}slices" if self.num_slices > 1 else "")

    @property
    def num_chips(self) -> int:
        return math.prod(self.shape) * self.num_slices


def _refuse(text: str, why: str):
    raise TopologyError(f"topology {text!r}: {why}; accepted: {ACCEPTED}")


def _dims(text: str, full: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(x\d+)*", text):
        _refuse(full, f"{text!r} is not a shape like 4x4 or 2x2x4")
    dims = tuple(int(d) for d in text.split("x"))
    if any(d < 1 for d in dims):
        _refuse(full, "every dimension must be at least 1")
    return dims


def parse(text: str, num_slices: int = 1) -> Target:
    """A Target from a name (see the module docstring); TopologyError if unknown."""
    text = text.strip()
    lowered = text.lower()
    if num_slices < 1:
        _refuse(text, f"num_slices={num_slices} must be at least 1")
    match = re.fullmatch(r"(v4|v5e|v5p|v6e|v5litepod)-(\d+)", lowered)
    if match:
        chip = "v5e" if match.group(1) == "v5litepod" else match.group(1)
        return Target(chip, "tpu", _cloud_shape(chip, int(match.group(2)), text), num_slices)
    chip, sep, dims = lowered.partition(":")
    if not sep:
        _refuse(text, "no CHIP:SHAPE or CHIP-N form")
    if chip in TPU_CHIPS:
        shape = _dims(dims, text)
        want = 3 if chip in MEGACORE else 2
        if len(shape) != want:
            _refuse(text, f"{chip} slices are {want}-dimensional")
        return Target(chip, "tpu", shape, num_slices)
    if chip in GPU_CHIPS:
        shape = _dims(dims, text)
        if len(shape) != 3:
            _refuse(text, "a GPU topology is SLICESxHOSTSxGPUS, e.g. h100:1x1x8")
        if num_slices != 1:
            _refuse(text, "give GPU slices in the name (SLICESxHOSTSxGPUS), not num_slices")
        return Target(chip, "gpu", shape)
    _refuse(text, f"unknown chip {chip!r} (known: {', '.join(CHIPS)})")


def _cloud_shape(chip: str, count: int, text: str) -> tuple[int, ...]:
    chips = count // 2 if chip in MEGACORE else count
    shapes = _SHAPES_3D if chip in MEGACORE else _SHAPES_2D
    for shape in shapes:
        if math.prod(shape) == chips:
            return shape
    sizes = ", ".join(f"{chip}-{math.prod(s) * (2 if chip in MEGACORE else 1)}" for s in shapes)
    _refuse(text, f"no standard {chip} slice of that size (known: {sizes})")


def quiet_platform_environment():
    """Compile on this CPU without probing for accelerators or cloud metadata, and
    without libtpu's warnings about the (absent) TPU VM environment. Set before the
    first jax import takes effect; the GPU flag is needed because Triton's GEMM
    autotuning cannot tile without a device."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_enable_triton_gemm" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_gpu_enable_triton_gemm=false").strip()


def devices(target: Target):
    """The target's abstract devices (TopologyError if the compiler plugin is missing)."""
    from jax.experimental import topologies

    try:
        if target.platform == "tpu":
            return _tpu_devices(topologies, target)
        return _gpu_devices(topologies, target)
    except (RuntimeError, NotImplementedError) as e:
        text = str(e)
        if "not installed" in text or "not implemented for" in text:
            raise TopologyError(
                f"topology {target.name}: the {target.platform.upper()} compiler is not "
                "installed here; pip install -r requirements-aot.txt (own environment)"
            ) from None
        raise


def _tpu_devices(topologies, target: Target):
    kwargs = dict(
        platform="tpu",
        topology_name=f"{target.chip}:{'x'.join(map(str, target.shape))}",
        chip_config_name="megacore" if target.chip in MEGACORE else "default",
        num_slices=target.num_slices,
    )
    return topologies.get_topology_desc(**kwargs).devices


def _gpu_devices(topologies, target: Target):
    _load_cudnn()
    desc = topologies.get_topology_desc(
        platform="cuda",
        target_config=gpu_target_config(target.chip),
        topology="x".join(map(str, target.shape)),
    )
    return desc.devices


def _load_cudnn():
    """model.attention=cudnn builds cuDNN's attention graph while compiling, so the cuDNN
    library must be loaded; jax loads it only when a GPU is attached. When the pip
    package nvidia-cudnn-cu12 is installed, load it here (else such a config fails at
    trace time with jax's "cuDNN not found"; the other kernels need no cuDNN)."""
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("nvidia.cudnn") if importlib.util.find_spec("nvidia") else None
    if spec is None or not spec.submodule_search_locations:
        return
    lib = os.path.join(next(iter(spec.submodule_search_locations)), "lib")
    for name in ("libcudnn_graph.so.9", "libcudnn.so.9"):
        if os.path.exists(os.path.join(lib, name)):
            ctypes.CDLL(os.path.join(lib, name), mode=ctypes.RTLD_GLOBAL)


# What XLA's GPU compiler needs to know of a device it cannot query (a GpuTargetConfig
# text proto): the published architecture figures of each GPU.
_GPU_SPECS = {
    "a100": dict(
        name="NVIDIA A100-SXM4-80GB",
        major=8,
        minor=0,
        cores=108,
        fpus=64,
        smem_core=167936,
        smem_optin=166912,
        l2=41943040,
        clock=1.41,
    ),
    "h100": dict(
        name="NVIDIA H100 80GB HBM3",
        major=9,
        minor=0,
        cores=132,
        fpus=128,
        smem_core=233472,
        smem_optin=232448,
        l2=52428800,
        clock=1.98,
    ),
}
# The H200 is the H100's chip (GH100: same SMs, caches and clock) with more, faster HBM,
# which mvl/compile/chips.py holds; the compiler sees the same device.
_GPU_SPECS["h200"] = dict(_GPU_SPECS["h100"], name="NVIDIA H200")


def gpu_target_config(chip: str) -> str:
    spec, figures = _GPU_SPECS[chip], CHIPS[chip]
    return f"""
gpu_device_info {{
  threads_per_block_limit: 1024 threads_per_warp: 32 shared_memory_per_block: 49152
  shared_memory_per_core: {spec["smem_core"]} threads_per_core_limit: 2048
  core_count: {spec["cores"]} fpus_per_core: {spec["fpus"]}
  block_dim_limit_x: 2147483647 block_dim_limit_y: 65535 block_dim_limit_z: 65535
  memory_bandwidth: {int(figures.hbm_bytes_per_s)} l2_cache_size: {spec["l2"]}
  clock_rate_ghz: {spec["clock"]} device_memory_size: {figures.hbm_bytes}
  shared_memory_per_block_optin: {spec["smem_optin"]}
  cuda_compute_capability {{ major: {spec["major"]} minor: {spec["minor"]} }}
  registers_per_core_limit: 65536 registers_per_block_limit: 65536
}}
runtime_version {{ major: 12 minor: 8 patch: 0 }}
platform_name: "CUDA"
dnn_version_info {{ major: 9 minor: 7 }}
device_description_str: "{spec["name"]}"
"""
