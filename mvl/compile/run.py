"""One config on one target: compile, measure, report (shared by the single-config
command, --search and --table)."""

from __future__ import annotations

import copy

from mvl import config as config_lib
from mvl.compile import aot, decode_rate, report
from mvl.runtime import fit


def load(spec: str, overrides: dict[str, str], target=None):
    """The config with the command line's overrides and, for `target`, its fit entry
    (mvl/runtime/fit.py; the command line wins)."""
    cfg = config_lib.load_config(spec)
    config_lib.apply_overrides(cfg, overrides)
    # A fine-tuning config names the run it starts from; its shapes are the config's,
    # and nothing is read here.
    if cfg.init.required and not cfg.init.checkpoint:
        cfg.unlock()
        cfg.init.required = False
        cfg.lock()
    if target is not None:
        chosen = fit.apply(cfg, target.fit_key, keep=overrides)
        if chosen:
            text = ", ".join(f"{k}={v}" for k, v in chosen.items())
            print(f"  [fit] {target.fit_key}: {text}", flush=True)
    return cfg


def with_settings(cfg, settings: dict):
    cfg = copy.deepcopy(cfg)
    config_lib.apply_overrides(cfg, {k: str(v) for k, v in settings.items()})
    return cfg


def compile_and_report(cfg, config_name: str, target, devices, decode=None) -> dict:
    found = aot.compile_step(cfg, devices)
    rate = decode if decode is not None else decode_rate.images_per_second(cfg.data.image_size)
    return report.build(cfg, config_name, target, devices, found, rate)
