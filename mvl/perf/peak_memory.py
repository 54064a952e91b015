"""Peak resident memory of this process, comparable between two processes.

`getrusage(...).ru_maxrss` is not: on Linux a child started with fork + exec inherits
its parent's high-water mark, so a small child reports its big parent's peak. The
kernel's per-process VmHWM (/proc/self/status) starts afresh at exec.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS: bytes; Linux: kB
