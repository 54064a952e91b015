"""Weight files: safetensors (read and written with its numpy API), or torch's
`.bin` / `.pt` through `torch.load(weights_only=True)`, which refuses anything but
tensors and plain containers. mvl never unpickles arbitrary objects, and torch is
imported only on that path (it is not an mvl dependency)."""

from __future__ import annotations

import os

import numpy as np
from safetensors import numpy as safetensors_numpy

from mvl.runtime.errors import UserError

TORCH_SUFFIXES = (".bin", ".pt", ".pth")


def load(path: str) -> dict[str, np.ndarray]:
    """{name: float32 array} of a checkpoint file, container prefixes stripped."""
    if not os.path.exists(path):
        raise UserError(f"--checkpoint {path} does not exist")
    if path.endswith(".safetensors"):
        try:
            state = safetensors_numpy.load_file(path)
        except Exception as e:  # noqa: BLE001 -- safetensors raises its own error types
            raise UserError(f"--checkpoint {path}: not a readable safetensors file ({e})")
    elif path.endswith(TORCH_SUFFIXES):
        state = _load_torch(path)
    else:
        raise UserError(
            f"--checkpoint {path}: use a .safetensors file (or {', '.join(TORCH_SUFFIXES)} "
            "with torch installed)"
        )
    return strip_prefixes(state)


def _load_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise UserError(
            f"--checkpoint {path} is a torch file: reading it needs torch (pip install "
            "torch), or convert it to .safetensors first"
        ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- torch's unpickler refusal or a damaged file
        raise UserError(f"--checkpoint {path}: torch.load(weights_only=True) refused it ({e})")
    for container in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(loaded, dict) and isinstance(loaded.get(container), dict):
            loaded = loaded[container]
    return {k: v.detach().float().numpy() for k, v in loaded.items() if hasattr(v, "detach")}


def strip_prefixes(state: dict) -> dict[str, np.ndarray]:
    """Names without DistributedDataParallel's `module.` (open_clip's training
    checkpoints) or a wrapping `model.` ; arrays as float32."""
    for prefix in ("module.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return {k: np.asarray(v, np.float32) for k, v in state.items()}


def save(path: str, state: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    safetensors_numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in state.items()}, path, metadata=metadata
    )
