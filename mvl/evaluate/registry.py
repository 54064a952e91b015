"""Evaluators by type name, as a config declares them (big_vision's `config.evals`):

    config.evals.<name> = dict(type=<registered type>, every_steps=<int | None>, **options)

Each evaluator is a class registered under its type with `@register("type")`. It says
its options and their defaults (`defaults`), checks a declared section before anything
is built (`validate(name, section)`), and is built with the run's EvalContext
(mvl/evaluate/context.py), where it checks what it needs of the model and the held-out
source. The suite (mvl/evaluate/suite.py) runs exactly what the config declares.
mvl's own types are imported on first use; an evaluator written outside mvl is named
by its import path, type="my_project.evals:MyEvaluator", or registers itself with
`@register` when its module is imported (e.g. by the config file).

This module imports nothing heavy: configs call `declare` while they are built.
"""

from __future__ import annotations

import importlib

from mvl.config.errors import ConfigError

# type -> module that registers it (imported when the type is first asked for).
BUILTIN = {
    "retrieval": "mvl.evaluate.evaluators.retrieval",
    "zeroshot": "mvl.evaluate.evaluators.zeroshot",
    "probe": "mvl.evaluate.evaluators.probe",
    "held_out_losses": "mvl.evaluate.evaluators.held_out_losses",
    "pair_matching": "mvl.evaluate.evaluators.pair_matching",
    "reconstructions": "mvl.evaluate.evaluators.reconstructions",
    "captions": "mvl.evaluate.evaluators.captions",
    "zeroshot_benchmark": "mvl.evaluate.evaluators.benchmark_zeroshot",
    "imagenet_zeroshot": "mvl.evaluate.evaluators.benchmark_zeroshot",
    "retrieval_benchmark": "mvl.evaluate.evaluators.benchmark_retrieval",
    "linear_probe_benchmark": "mvl.evaluate.evaluators.benchmark_linear_probe",
}

REGISTRY: dict[str, type] = {}

COMMON_KEYS = ("type", "every_steps")


def register(type_name: str):
    """Class decorator: registers an evaluator under `type_name`."""

    def decorate(cls):
        cls.type_name = type_name
        REGISTRY[type_name] = cls
        return cls

    return decorate


def get(type_name: str) -> type:
    """The evaluator class of `type_name`: a registered type, or "package.module:Class"
    (an evaluator written outside mvl, imported and registered under that name)."""
    if type_name not in REGISTRY and type_name in BUILTIN:
        importlib.import_module(BUILTIN[type_name])
    if type_name not in REGISTRY and ":" in type_name:
        module, _, attr = type_name.partition(":")
        try:
            REGISTRY[type_name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"evaluator type {type_name!r} cannot be loaded: {e}") from None
    if type_name not in REGISTRY:
        known = sorted(set(REGISTRY) | set(BUILTIN))
        raise ConfigError(f"unknown evaluator type {type_name!r}; registered: {', '.join(known)}")
    return REGISTRY[type_name]


def declare(type_name: str, every_steps: int | None = None, **options) -> dict:
    """The config section of an evaluator: its type, cadence (None = eval.every_steps,
    0 = only at the end) and every option, defaults filled in."""
    cls = get(type_name)
    unknown = sorted(set(options) - set(cls.defaults))
    if unknown:
        raise ConfigError(
            f"evaluator {type_name!r} has no option {unknown[0]!r}; options: "
            f"{', '.join(cls.defaults) or 'none'}"
        )
    return dict(type=type_name, every_steps=every_steps, **{**cls.defaults, **options})


def validate_sections(evals):
    """Checks every declared section (before anything is built): a known type, known
    options only, a valid cadence, and the evaluator's own rules."""
    for name, section in evals.items():
        where = f"evals.{name}"
        if "type" not in section:
            raise ConfigError(f"config {where} has no type; registered: {', '.join(BUILTIN)}")
        cls = get(section.type)
        unknown = sorted(set(section) - set(COMMON_KEYS) - set(cls.defaults))
        if unknown:
            raise ConfigError(
                f"config {where}.{unknown[0]}: not an option of evaluator {section.type!r} "
                f"(options: {', '.join(cls.defaults) or 'none'})"
            )
        every = section.get("every_steps")
        if every is not None and (not isinstance(every, int) or every < 0):
            raise ConfigError(
                f"config {where}.every_steps={every!r}: use an int >= 0 (0 = only at the "
                "end) or None (eval.every_steps)"
            )
        cls.validate(where, {**cls.defaults, **section})


def cadence(section, eval_every: int) -> int:
    """Steps between runs of one declared evaluator (0 = only at the end)."""
    every = section.get("every_steps")
    return eval_every if every is None else every


def evaluates_periodically(cfg) -> bool:
    """Whether any declared evaluator runs before the end of training."""
    evals = cfg.get("evals", {})
    return any(cadence(section, cfg.eval.every_steps) for section in evals.values())
