"""Whether the user asked to stop (Ctrl-C, SIGTERM), remembered: checked where a step cannot be
taken back (a profile replaced by `enroll --force`).

A Ctrl-C raises KeyboardInterrupt wherever Python is; one that lands inside an import can come
out as an ImportError ("initialization failed", seen from a C extension), and a library's
``except ImportError`` fallback then swallows it: the run went on and replaced the profile the
user had asked to keep (bad-input review). `run.py` records each signal here (`note`) before
raising as usual; `check` raises KeyboardInterrupt at a point of no return if one was recorded.
"""
from __future__ import annotations

from collections.abc import Callable

__all__ = ["note", "requested", "check", "clear", "through_stops"]

# A plain flag, not a threading.Event: signal handlers run on the main thread only, and an
# Event's lock taken in a handler would deadlock on a second Ctrl-C arriving inside the first.
_asked = False


def note() -> None:
    """Record that the user asked to stop (a signal handler calls it)."""
    global _asked
    _asked = True


def requested() -> bool:
    return _asked


def check() -> None:
    """KeyboardInterrupt if a stop was asked for, even one an exception handler swallowed."""
    if _asked:
        raise KeyboardInterrupt


def clear() -> None:
    """Forget it (a new command in the same process; tests)."""
    global _asked
    _asked = False


#: Called once, at the first stop that `through_stops` waits out (the CLI sets it: "finishing
#: the file... Ctrl-C N more times to abandon it"); None says nothing.
on_waiting: Callable[[int], object] | None = None


def through_stops(*steps: Callable[[], object], patience: int = 3) -> KeyboardInterrupt | None:
    """Run each of `steps` to its end, calling it again when a Ctrl-C (or the SIGTERM handler's
    KeyboardInterrupt) cuts it short; returns the first such interrupt, or None. For the steps
    that finish what a stop leaves (a file sink finishing and renaming its file): a second
    signal there, a double Ctrl-C or a supervisor's SIGTERM after one, ended the process with
    the recording under its hidden partial name. Each step must be safe to call again after an
    interrupt (idempotent) and bounded in time (a close's timeout). After `patience` interrupts
    the last one is raised: the user can still abandon a close that hangs (`on_waiting` is told,
    with how many are left, at the first)."""
    first: KeyboardInterrupt | None = None
    seen = 0
    for step in steps:
        while True:
            try:
                step()
                break
            except KeyboardInterrupt as again:
                first = first or again
                seen += 1
                if seen >= patience:
                    raise
                if seen == 1 and on_waiting is not None:
                    on_waiting(patience - seen)
    return first
