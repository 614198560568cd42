"""Whether the user asked to stop (Ctrl-C, SIGTERM), remembered: checked where a step cannot be
taken back (a profile replaced by `enroll --force`).

A Ctrl-C raises KeyboardInterrupt wherever Python is; one that lands inside an import can come
out as an ImportError ("initialization failed", seen from a C extension), and a library's
``except ImportError`` fallback then swallows it: the run went on and replaced the profile the
user had asked to keep (bad-input review). `run.py` records each signal here (`note`) before
raising as usual; `check` raises KeyboardInterrupt at a point of no return if one was recorded.
"""
from __future__ import annotations

__all__ = ["note", "requested", "check", "clear"]

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
