"""The accelerators mvl.compile knows: peak dense bf16 FLOP/s, HBM size and bandwidth,
per chip (TPU v4 / v5p: both TensorCores of a chip, driven as one "megacore" device).

Vendors' published figures (dense, no sparsity). Sources:
- TPU v4:  cloud.google.com/tpu/docs/v4   275 TFLOP/s bf16, 32 GiB HBM2, 1200 GB/s
- TPU v5e: cloud.google.com/tpu/docs/v5e  197 TFLOP/s bf16, 16 GiB HBM2, 819 GB/s
- TPU v5p: cloud.google.com/tpu/docs/v5p  459 TFLOP/s bf16, 95 GiB HBM2e, 2765 GB/s
- TPU v6e: cloud.google.com/tpu/docs/v6e  918 TFLOP/s bf16, 32 GiB HBM, 1640 GB/s
- A100 SXM4 80GB: NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100)
  312 TFLOP/s bf16 tensor core, 80 GB HBM2e, 2039 GB/s
- H100 SXM5 80GB: NVIDIA H100 datasheet (nvidia.com/en-us/data-center/h100)
  989 TFLOP/s bf16 tensor core (1979 is with 2:4 sparsity), 80 GB HBM3, 3.35 TB/s
- H200 SXM 141GB: NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200)
  989 TFLOP/s bf16 tensor core, 141 GB HBM3e, 4.8 TB/s
HBM bytes are what the device reports as its memory (the GPUs' nvidia-smi totals:
A100 81920 MiB, H100 81559 MiB, H200 143771 MiB). The GPU rows' `usable_fraction` is
the share of HBM launch/gpu.sh lets XLA take (XLA_PYTHON_CLIENT_MEM_FRACTION=0.9).
"""

from __future__ import annotations

import dataclasses

GIB = 2**30
MIB = 2**20


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    platform: str  # "tpu" | "gpu"
    peak_bf16_flops: float  # dense FLOP/s
    hbm_bytes: int
    hbm_bytes_per_s: float
    usable_fraction: float = 1.0  # of HBM a run may fill

    @property
    def usable_bytes(self) -> int:
        return int(self.hbm_bytes * self.usable_fraction)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


CHIPS = {
    "v4": Chip("v4", "tpu", 275e12, 32 * GIB, 1200e9),
    "v5e": Chip("v5e", "tpu", 197e12, 16 * GIB, 819e9),
    "v5p": Chip("v5p", "tpu", 459e12, 95 * GIB, 2765e9),
    "v6e": Chip("v6e", "tpu", 918e12, 32 * GIB, 1640e9),
    "a100": Chip("a100", "gpu", 312e12, 81920 * MIB, 2039e9, 0.9),
    "h100": Chip("h100", "gpu", 989e12, 81559 * MIB, 3.35e12, 0.9),
    "h200": Chip("h200", "gpu", 989e12, 143771 * MIB, 4.8e12, 0.9),
}
TPU_CHIPS = tuple(name for name, chip in CHIPS.items() if chip.platform == "tpu")
GPU_CHIPS = tuple(name for name, chip in CHIPS.items() if chip.platform == "gpu")
