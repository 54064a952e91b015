"""The config's `imports`: user modules that register objectives or mask kinds.

Each entry is a module name (importable from sys.path) or a path to a .py file; they
are imported before the config is validated or a model is built, so an objective
defined outside mvl/ (with its own heads) is enabled by naming it in `objectives`.
Importing the same entry again is a no-op.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys

from mvl.config import ConfigError


def load(cfg) -> None:
    for entry in tuple(cfg.get("imports", ()) or ()):
        try:
            _import(entry)
        except ConfigError:
            raise
        except Exception as e:  # the user's module: say which entry failed and why
            raise ConfigError(f"config imports: {entry!r} failed to import: {e}") from e


def _import(entry: str):
    if not entry.endswith(".py"):
        return importlib.import_module(entry)
    path = os.path.abspath(os.path.expanduser(entry))
    if not os.path.isfile(path):
        raise ConfigError(f"config imports: {entry!r} is not a file")
    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    name = f"mvl_user_{os.path.splitext(os.path.basename(path))[0]}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
