"""Reads the scalars a run wrote to WORKDIR/tensorboard (clu writes them as tensors)."""

from __future__ import annotations

import glob
import os

import numpy as np


def read_scalars(workdir: str, skip_tags: tuple[str, ...] = ()) -> dict[str, dict[int, float]]:
    """tag -> {step: value}; for steps written twice (a resumed run replays the steps
    after its checkpoint) the newest event file wins."""
    from tensorboard.backend.event_processing import event_accumulator

    values: dict[str, dict[int, float]] = {}
    # event file names start with their creation time: oldest first
    for path in sorted(
        glob.glob(os.path.join(workdir, "tensorboard", "**", "events.*"), recursive=True)
    ):
        events = event_accumulator.EventAccumulator(path, size_guidance={"tensors": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            if any(skip in tag for skip in skip_tags):
                continue
            for event in events.Tensors(tag):
                values.setdefault(tag, {})[event.step] = _scalar(event.tensor_proto)
    return values


def _scalar(proto) -> float:
    array = np.frombuffer(proto.tensor_content, np.float32)
    return float(array[0] if array.size else proto.float_val[0])
