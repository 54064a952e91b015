"""Errors a user can act on (bad config, workdir, checkpoint, data); `mvl.main` prints
them as one line instead of a traceback. Anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Says what is wrong, where (a config key, a file, a sample) and what to do."""
