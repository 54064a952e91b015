"""What every evaluator is: a class registered by type (mvl/evaluate/registry.py)."""

from __future__ import annotations

import abc
from typing import ClassVar

from mvl.config.errors import ConfigError


class Evaluator(abc.ABC):
    """One declared evaluation. Subclasses set `defaults` (their options), may check
    option values in `validate` (before anything is built) and what they need of the
    model or the held-out source in `__init__` (raising ConfigError), and report
    metrics from `run`; an evaluator that draws pictures returns them from `pictures`.
    """

    type_name: ClassVar[str] = ""
    defaults: ClassVar[dict] = {}

    def __init__(self, name: str, section, context):
        self.name, self.section, self.context = name, section, context
        self.where = f"evals.{name}"

    @classmethod
    def validate(cls, where: str, section: dict) -> None:
        """Raises ConfigError for an option value this evaluator cannot use."""

    @abc.abstractmethod
    def run(self, state) -> dict[str, float]:
        """Metrics of `state` (its params and teacher), named without the eval/ prefix."""

    def pictures(self, state) -> dict:
        """{name: uint8 [H, W, 3]} to show beside the metrics (none by default)."""
        return {}

    def texts(self, state) -> dict[str, str]:
        """{name: markdown text} to show beside the metrics (none by default)."""
        return {}

    def refuse(self, rule: str):
        raise ConfigError(f"config {self.where} ({self.section.type}): {rule}")


def fail(where: str, key: str, value, rule: str):
    raise ConfigError(f"config {where}.{key}={value!r}: {rule}")


def check_positive(where: str, section: dict, *keys: str):
    for key in keys:
        if not isinstance(section[key], int) or section[key] < 1:
            fail(where, key, section[key], "must be an int >= 1")
