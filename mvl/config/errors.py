"""The error every config problem raises: one line naming the file, key or value."""

from __future__ import annotations

from mvl.runtime.errors import UserError


class ConfigError(UserError, ValueError):
    """A config file, key or value a user must fix; the message names it."""
