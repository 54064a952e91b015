"""The command line every mvl command shares: its own arguments plus `--config.a.b=v`."""

from __future__ import annotations

import argparse

from mvl.config.errors import ConfigError


def command_line(prog: str, doc: str) -> argparse.ArgumentParser:
    """The parser every mvl command starts from (its module docstring as help); add
    arguments, then `parse_command_line`."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str]):
    """(config overrides from --config.a.b=v, the parser's own arguments)."""
    overrides, rest = parse_cli_overrides(argv)
    return overrides, parser.parse_args(rest)


def parse_cli_overrides(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Splits `--config.a.b=v` / `--config.a.b v` arguments from the rest."""
    overrides, rest = {}, []
    it = iter(argv)
    for arg in it:
        if arg.startswith("--config."):
            key_value = arg[len("--config.") :]
            if "=" in key_value:
                key, value = key_value.split("=", 1)
            else:
                key, value = key_value, next(it, None)
                if value is None:
                    raise ConfigError(f"--config.{key} needs a value")
            overrides[key] = value
        else:
            rest.append(arg)
    return overrides, rest
