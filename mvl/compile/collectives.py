"""The collectives in a compiled program's HLO: how many of each kind, and the bytes
they produce per device, so a user sees what FSDP gathers and reduces and that nothing
large is replicated or reduced by accident. Counts are instructions in the program: a
collective inside a loop (scanned layers, microbatches) is counted once, not per
iteration."""

from __future__ import annotations

import re

KINDS = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_BYTES = {
    "pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "s4": 0.5, "u4": 0.5,
    "bf16": 2, "f16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
    "f64": 8, "s64": 8, "u64": 8, "c64": 8, "c128": 16,
}  # fmt: skip
# One instruction per line: `%name = SHAPE kind(...)` or `kind-start(...)`, SHAPE an
# array or a tuple of arrays (TPU layouts such as {1,0:T(8,128)} hold parentheses).
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(?P<shape>.*?)\s+"
    r"(?P<kind>" + "|".join(KINDS) + r")(?P<start>-start)?\(",
    re.MULTILINE,
)
_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([0-9,]*)\]")


def _array_bytes(dtype: str, dims: str) -> float:
    size = 1
    for d in filter(None, dims.split(",")):
        size *= int(d)
    return size * _BYTES.get(dtype, 4)


def _result_bytes(shape: str, is_async: bool) -> float:
    arrays = [_array_bytes(t, d) for t, d in _ARRAY.findall(shape)]
    if not arrays:
        return 0.0
    # An async start returns (operands..., results...[, scratch]): its largest array is
    # the result of a gather and the size of a reduction's operand.
    return max(arrays) if is_async else sum(arrays)


def collectives(hlo_text: str) -> dict[str, dict]:
    """{kind: {"count", "bytes"}} over the HLO module text (every kind listed)."""
    found = {kind: {"count": 0, "bytes": 0} for kind in KINDS}
    for match in _INSTRUCTION.finditer(hlo_text):
        entry = found[match.group("kind")]
        entry["count"] += 1
        entry["bytes"] += int(_result_bytes(match.group("shape"), bool(match.group("start"))))
    return found
