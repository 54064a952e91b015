"""Config arguments (`configs/X.py:ARG`): typed by each config's declaration."""

from __future__ import annotations

import ml_collections

from mvl.config.errors import ConfigError

# The sizes every config accepts as a bare word (its first argument, or `size=`).
SIZE_NAMES = ("demo", "paper")


def parse_arg(arg: str | None, **declared) -> ml_collections.ConfigDict:
    """The config argument ("demo", "paper,ratio=0.75", "demo,tune") typed by its
    declaration, big_vision-style: each config says what it accepts, with defaults

        args = parse_arg(arg, ratio=0.5, tune=False)   # -> args.size, args.ratio, args.tune

    A bare word is a size (SIZE_NAMES; default "demo") or a declared bool flag (True);
    `key=value` sets a declared key, parsed as its default's type (bool: true/false).
    Anything else raises ConfigError naming every accepted argument, so a typo such as
    `:demoo` or `ration=0.75` stops the run instead of silently running the defaults.
    """
    values = {"size": SIZE_NAMES[0], **declared}
    for item in filter(None, (part.strip() for part in (arg or "").split(","))):
        key, has_value, raw = item.partition("=")
        key = key.strip()
        if not has_value and key in SIZE_NAMES:
            values["size"] = key
        elif not has_value and isinstance(declared.get(key), bool):
            values[key] = True
        elif has_value and key == "size" and raw.strip() in SIZE_NAMES:
            values["size"] = raw.strip()
        elif has_value and key in declared:
            values[key] = _typed_arg(key, raw.strip(), declared[key], declared)
        else:
            raise ConfigError(
                f"config argument {item!r} is not accepted; {accepted_args(declared)}"
            )
    return ml_collections.ConfigDict(values)


def _typed_arg(key: str, raw: str, default, declared: dict):
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError("use true or false")
            return raw.lower() == "true"
        return type(default)(raw)
    except ValueError as e:
        raise ConfigError(
            f"config argument {key}={raw!r} is not a {type(default).__name__} ({e}); "
            f"{accepted_args(declared)}"
        ) from None


def accepted_args(declared: dict) -> str:
    """One line naming what a config accepts (its parse_arg declaration)."""
    parts = [f"a size ({' | '.join(SIZE_NAMES)}, default {SIZE_NAMES[0]})"]
    for key, default in declared.items():
        if isinstance(default, bool):
            parts.append(f"{key} (flag)")
        else:
            parts.append(f"{key}=<{type(default).__name__}> (default {default!r})")
    return "accepted, joined by commas: " + ", ".join(parts)
