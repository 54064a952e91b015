"""Converting one shard for `python -m mvl.data.convert` (mvl/data/convert.py), in the
main process or a worker process.

Every sample is checked as training would read it (caption cleaned, image decoded with
mvl/data/decode.py's rules); usable samples keep their original image bytes (arrays,
e.g. from shapes, are stored as PNG), broken ones are left out and counted by kind. The
shard is written to a temporary file and renamed when complete.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from typing import Any

import numpy as np

from mvl.data import decode, sources
from mvl.data.bad_sample import kind_of
from mvl.data.convert_output import EXAMPLES_KEPT, Plan, write_json
from mvl.data.sources import array_record

CHECK_SIZE = 32  # images are decoded (and resized this small) only to prove they decode


def build_source(plan: Plan) -> Any:
    if ":" in plan.spec:  # a file format: no pipeline (and grain, ~5 s) in each worker
        return sources.from_spec(plan.spec, plan.image_size, plan.options)
    from mvl.data import pipeline

    return pipeline.make_source(
        plan.spec,
        plan.split,
        size=plan.size,
        seed=0,
        image_size=plan.image_size,
        options=plan.options,
    )


def stored_record(source: Any, index: int) -> tuple[Any, Any]:
    if hasattr(source, "record"):
        return source.record(index)
    example = source[index]  # a generated source: decoded pixels
    return example["image"], example["caption"]


def encode_png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    decode.image_from_array(np.asarray(pixels)).save(out, format="PNG")
    return out.getvalue()


def convert_sample(source: Any, index: int, where: str) -> bytes:
    """The sample's record; raises (BadSample or anything else) if training could not use it."""
    image, caption = stored_record(source, index)
    text = decode.clean_caption(caption)
    decode.decode_image(image, CHECK_SIZE)
    if isinstance(image, np.ndarray) and image.dtype != object:
        image = encode_png(image)
    return array_record.pack(bytes(image), text, where)


_SOURCES: dict[Plan, Any] = {}  # one source per worker process, built on its first shard


def convert_shard(plan: Plan, k: int) -> dict:
    """Writes shard k atomically and marks it done; returns its report."""
    from array_record.python.array_record_module import ArrayRecordWriter

    if plan not in _SOURCES:
        _SOURCES[plan] = build_source(plan)
    source = _SOURCES[plan]
    describe = getattr(source, "describe", lambda i: f"sample {i}")
    final = plan.shard_path(k)
    tmp = os.path.join(plan.output, f".{os.path.basename(final)}.tmp-{os.getpid()}")
    writer = ArrayRecordWriter(tmp, array_record.WRITER_OPTIONS)
    written, skipped, examples = 0, Counter(), []
    for index in range(k * plan.shard_size, min((k + 1) * plan.shard_size, plan.num_samples)):
        where = describe(index)
        try:
            record = convert_sample(source, index, where)
        except Exception as e:  # noqa: BLE001 -- counted and reported; never stops a conversion
            skipped[kind_of(e)] += 1
            if len(examples) < EXAMPLES_KEPT:
                examples.append(
                    {"where": where, "kind": kind_of(e), "reason": f"{type(e).__name__}: {e}"}
                )
            continue
        writer.write(record)
        written += 1
    writer.close()
    os.replace(tmp, final)
    report = {
        "shard": os.path.basename(final),
        "written": written,
        "skipped": dict(skipped),
        "examples": examples,
    }
    write_json(plan.progress_path(k), report)
    return report
