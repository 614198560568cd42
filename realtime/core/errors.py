"""The one root of user-facing errors.

`PuppeteerError` is raised for what the user can fix or must act on: a profile that cannot be
read, a camera that cannot be opened, a device that is missing, a bad command-line value. Its
message is one line that names the value involved and says what to do. `run.py` prints it as
``error: <message>`` and exits 2. Any other exception is a bug and shows a traceback.

Each part of the engine subclasses it where it raises (`CaptureError` in capture, `SinkError`
in the sinks, ...), so a caller can still catch one kind; this module holds the root and the
errors that several layers raise.
"""
from __future__ import annotations

__all__ = ["PuppeteerError", "ProfileError"]


class PuppeteerError(Exception):
    """A mistake the user can fix (or a condition they must act on). One line, exit 2."""


class ProfileError(PuppeteerError):
    """A profile that cannot be read, written or trusted, or that lacks what a tier needs."""
