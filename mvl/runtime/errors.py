"""Errors a user can act on; every command prints them as one line instead of a
traceback (mvl/runtime/cli.py). Anything else is a bug and keeps its traceback."""


class OneLineError(Exception):
    """A failure told in one line (what, where, what to do) with its own exit status."""

    exit_code = 1
    label = "error"


class UserError(OneLineError):
    """Says what is wrong, where (a config key, a file, a sample) and what to do."""

    exit_code = 2


class RunFailed(OneLineError):
    """The run cannot go on (a checkpoint that cannot be written, a failed evaluation
    under eval.on_failure='stop'); what is saved is named in the message."""

    exit_code = 1


class Interrupted(OneLineError):
    """Ctrl-C: the run stopped (after saving, when training had started)."""

    exit_code = 130
    label = "interrupted"
