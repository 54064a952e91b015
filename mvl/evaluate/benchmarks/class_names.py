"""Class names and prompt templates for zero-shot classification.

Shipped (mvl/evaluate/class_names/<set>.json, each file saying where its names come
from): "imagenet1k" (CLIP's 1000 cleaned names; templates "openai_80" and the 7-template
subset "openai_7"), "cifar10", "cifar100" (CLIP's 18 templates, "clip_18"). A user's
own: a .json file {"class_names": [...], "templates": {"<name>": [...]}} or a bare
list, or a .txt file with one class name (or one template) per line. A template has
one "{}" where the class name goes.
"""

from __future__ import annotations

import json
import os

from mvl.runtime.errors import UserError

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "class_names")


def shipped_sets() -> list[str]:
    return sorted(f[: -len(".json")] for f in os.listdir(SHIPPED_DIR) if f.endswith(".json"))


def class_names(spec: str, where: str) -> list[str]:
    """The class names `spec` names: a shipped set, or a .json / .txt file."""
    names = _read(spec, where, "class_names")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"{where}={spec!r}: class names must be a list of non-empty strings")
    return names


def templates(spec: str, where: str, default_set: str = "") -> list[str]:
    """Templates: "<set>:<name>" (e.g. "imagenet1k:openai_7"), a bare template name of
    `default_set`, or a .json / .txt file."""
    if not _is_file(spec) and ":" not in spec and default_set:
        spec = f"{default_set}:{spec}"
    if not _is_file(spec) and ":" in spec:
        set_name, _, name = spec.partition(":")
        offered = _read(set_name, where, "templates")
        if name not in offered:
            raise UserError(f"{where}={spec!r}: {set_name} offers templates {sorted(offered)}")
        found = offered[name]
    else:
        found = _read(spec, where, "templates")
        if isinstance(found, dict):  # a user's file with several: the first one
            found = next(iter(found.values()), [])
    bad = [t for t in found if not isinstance(t, str) or t.count("{}") != 1]
    if not found or bad:
        raise UserError(
            f"{where}={spec!r}: templates must be strings with one '{{}}' (got {bad[:1] or 'none'})"
        )
    return list(found)


def first_template_set(set_name: str, where: str) -> str:
    """The name of a shipped set's first (reference) template list."""
    return next(iter(_read(set_name, where, "templates")))


def _is_file(spec: str) -> bool:
    return spec.endswith((".json", ".txt"))


def _read(spec: str, where: str, field: str):
    if not _is_file(spec):
        path = os.path.join(SHIPPED_DIR, f"{spec}.json")
        if not os.path.isfile(path):
            raise UserError(
                f"{where}={spec!r}: not a shipped set ({', '.join(shipped_sets())}) nor a "
                ".json / .txt file"
            )
    else:
        path = spec
    if not os.path.isfile(path):
        raise UserError(f"{where}: file {path!r} does not exist")
    with open(path) as f:
        if path.endswith(".txt"):
            return [line.strip() for line in f if line.strip()]
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}: {path} is not JSON ({e})") from None
    if isinstance(data, list):
        return data
    if field not in data:
        raise UserError(f"{where}: {path} has no {field!r}")
    return data[field]
