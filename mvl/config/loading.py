"""Configs as code: load `configs/X.py:ARG`, apply `--config.a.b=value` overrides.

ml_collections' own `config_flags` reports an unknown key as a long traceback from
inside flag parsing; mvl wants one line that names the key, so overrides are parsed
here (a few lines) and applied to the locked ConfigDict that `get_config` returns.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os

import ml_collections

from mvl.config.errors import ConfigError


def python_file(path: str, module_name: str):
    """The module a .py file defines (config and table files), run under `module_name`."""
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `path/to/config.py[:arg]` by calling its `get_config(arg)`."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path!r} (from --config {spec})")
    module = python_file(path, "mvl_user_config")
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path} defines no get_config(arg)")
    try:
        config = module.get_config(arg or None)
    except ConfigError as e:  # a config argument it does not accept: name the file
        raise ConfigError(f"--config {spec}: {e}") from None
    config.lock()
    return config


def config_beside(this_file: str, name: str, arg: str | None) -> ml_collections.ConfigDict:
    """The config file `name` next to `this_file`, built with `arg` and unlocked, for a
    composition config to extend (then `lock()` it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(this_file)), name)
    config = load_config(f"{path}:{arg or ''}")
    config.unlock()
    return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, str]):
    """Sets each dotted key to its value, parsed with the type the key already has.
    `evals.<name>.type` declares (or, with "none", removes) an evaluator first, so its
    options can follow (mvl/config/evals.py); options of a removed one are ignored (a
    table's shared overrides may set them for rows that keep it)."""
    from mvl.config import evals

    removed = set()  # evaluators this set removes ("none"): their options are moot
    for dotted_key, raw_value in overrides.items():
        if evals.is_declaring(dotted_key):
            evals.declare_from_override(config, dotted_key, raw_value)
            if str(raw_value).lower() == "none":
                removed.add(dotted_key.split(".")[1])
    for dotted_key, raw_value in overrides.items():
        parts = dotted_key.split(".")
        if parts[0] == "evals" and len(parts) > 2 and parts[1] in removed:
            continue  # an option of an evaluator removed above
        parent, leaf = _resolve_parent(config, dotted_key)
        current = parent[leaf]
        try:
            parent[leaf] = _parse_like(raw_value, current)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"config key {dotted_key!r}: cannot use value {raw_value!r} "
                f"(expected {type(current).__name__}): {e}"
            ) from None
    return config


def _resolve_parent(config, dotted_key: str):
    parts = dotted_key.split(".")
    node, walked = config, []
    for part in parts:
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            known = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            hint = difflib.get_close_matches(part, known, n=1)
            where = ".".join(walked) or "the top level"
            suggestion = f"; did you mean {'.'.join(walked + hint[:1])!r}?" if hint else ""
            raise ConfigError(
                f"unknown config key {dotted_key!r}: no {part!r} in {where}{suggestion}"
            )
        walked.append(part)
        parent, node = node, node[part]
    return parent, parts[-1]


def _parse_like(raw: str, current):
    """Parses a command-line string into the type of the value it replaces."""
    if isinstance(current, bool):
        lowered = raw.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError("use true or false")
        return lowered in ("true", "1")
    if isinstance(current, str):
        return raw
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a None-valued key given a plain word
    if isinstance(current, (tuple, list)):
        value = type(current)(value if isinstance(value, (tuple, list)) else (value,))
    return value
