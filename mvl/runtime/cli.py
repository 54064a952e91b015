"""What every `python -m mvl.X` does around its work: quiet start-up, and a user's
mistake (or Ctrl-C) told in one line with an exit status instead of a traceback.

    def main(argv=None) -> int:
        return cli.run_main("mvl.embed", _main, argv)

    if __name__ == "__main__":
        cli.exit_with(main())

Exit statuses: 0 done, 1 the run failed (its message says what is saved), 2 a user
error (bad flag, config, file), 130 Ctrl-C. A bug keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from mvl.runtime.errors import Interrupted, OneLineError

EXIT_INTERRUPTED = Interrupted.exit_code


def quiet_startup():
    """TensorFlow (imported for TensorBoard event files and tfds, never for the model)
    prints INFO banners at import: its CPU-feature note, and a oneDNN note (with absl's
    "log messages before absl::InitializeLog()" line) that TF_CPP_MIN_LOG_LEVEL does not
    reach. INFO is hidden and oneDNN's custom kernels are off for TensorFlow's own ops
    (JAX's numerics are untouched); warnings and errors still print. Either variable
    set in the environment wins."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def run_main(
    prog: str,
    work: Callable[[Sequence[str]], int | None],
    argv: Sequence[str] | None = None,
    also: tuple[type[BaseException], ...] = (),
) -> int:
    """`work(argv)`'s exit status; a OneLineError (or one of `also`) is printed as
    `prog: error: ...` on stderr and returns its status (2 for `also`)."""
    quiet_startup()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return work(argv) or 0
    except OneLineError as e:
        say(prog, e.label, e)
        return e.exit_code
    except also as e:
        say(prog, "error", e)
        return 2
    except KeyboardInterrupt:
        say(prog, "interrupted", "Ctrl-C")
        return EXIT_INTERRUPTED


def say(prog: str, label: str, message) -> None:
    """One line on stderr, whatever newlines the message holds."""
    text = " ".join(str(message).split())
    print(f"{prog}: {label}: {text}", file=sys.stderr, flush=True)


def exit_with(status: int):
    """Ends the process. After Ctrl-C it ends at once: XLA's threads may still be
    compiling, and the interpreter's normal teardown under them can crash."""
    if status == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
