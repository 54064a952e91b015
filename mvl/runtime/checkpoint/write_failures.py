"""A checkpoint that could not be written (disk full, permission, quota), named in one
line instead of orbax's tracebacks.

Write failures happen in orbax's background thread; the loop asks after every step
(`Checkpointer.check_for_errors`), so the run stops one step after the failed save.
"""

from __future__ import annotations

import errno
import logging
import os

from mvl.runtime.errors import RunFailed


class CheckpointWriteError(RunFailed, OSError):
    """A checkpoint could not be written (disk full, no permission, quota)."""


# errno values and the words storage libraries (tensorstore, gcsfs) use for them.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
WRITE_FAILURE_WORDS = (
    "no space left",
    "resource_exhausted",
    "disk quota",
    "permission denied",
    "read-only file system",
    "file too large",
)


class _ToldOtherwise(logging.Filter):
    """Drops orbax log records that mvl tells the user better or that say nothing: a
    failed background save's tracebacks (twice; the loop says it in one line,
    CheckpointWriteError), and the notes that a read-only view (another run's
    checkpoints, opened to read) is read-only. Any other orbax warning still prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and write_failure_reason(error) is not None:
            return False
        return not any(note in record.getMessage() for note in READ_ONLY_NOTES)


READ_ONLY_NOTES = ("read_only=True, setting save_interval_steps=0", "Given directory is read only")


def install_log_filter():
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _ToldOtherwise) for f in absl_logger.filters):
        absl_logger.addFilter(_ToldOtherwise())


def write_failure_reason(error: BaseException) -> str | None:
    """ "No space left on device" (and the like) when `error` or an exception it was
    raised from is a failure to write storage; None for anything else (a bug)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            return os.strerror(error.errno)
        text = str(error).lower()
        for words in WRITE_FAILURE_WORDS:
            if words in text:
                return "disk full (RESOURCE_EXHAUSTED)" if words == "resource_exhausted" else words
        error = error.__cause__ or error.__context__
    return None
