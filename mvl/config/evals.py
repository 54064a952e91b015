"""Declaring evaluators in a method config: `add_eval(c, "probe", steps=100)`."""

from __future__ import annotations

from mvl.config.errors import ConfigError


def add_eval(c, name: str, type: str | None = None, every_steps: int | None = None, **options):
    """Declares `c.evals.<name>`: evaluator `type` (default: `name`) with its options,
    defaults filled in (mvl/evaluate/registry.py); every_steps None = eval.every_steps,
    0 = only at the end."""
    from mvl.evaluate import registry

    c.evals[name] = registry.declare(type or name, every_steps, **options)


def is_declaring(dotted_key: str) -> bool:
    """`evals.<name>.type`: declares evaluator <name> when the config has none of that
    name (`--config.evals.probe.type=probe` adds a probe with its defaults)."""
    parts = dotted_key.split(".")
    return len(parts) == 3 and parts[0] == "evals" and parts[2] == "type"


def declare_from_override(config, dotted_key: str, type_name: str) -> bool:
    """Declares `evals.<name>` of `type_name` if the config lacks it; True if it did.
    The value "none" removes a declared evaluator instead (`--config.evals.zeroshot.type=none`)."""
    name = dotted_key.split(".")[1]
    if "evals" not in config:
        return False
    with config.unlocked():
        if type_name.lower() == "none":
            if name in config.evals:
                del config.evals[name]
            return True
        if name in config.evals:
            return False
        try:
            add_eval(config, name, type_name)
        except ConfigError as e:
            raise ConfigError(f"config key {dotted_key!r}: {e}") from None
    return True
