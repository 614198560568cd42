"""The sink contract: the `Sink` protocol, `SinkError`, the hotkey events and the frame check.

Sink protocol:

    name: str                          short name for logs ("null", "file", "vcam", "window")
    open(width, height, fps)           prepare for frames of that size; fps may be None
    write(frame: Frame)                consume `frame.output`, RGB uint8 (height, width, 3)
    close()                            flush and release; safe to call more than once
    poll_events() -> list[str]         hotkey events since the last call, each one of
                                       "recalibrate", "toggle", "quit", "gain:<region>" (select
                                       the region the next three change), "gain+", "gain-",
                                       "gain0" (reset it to 1), "glasses" (the swap keeps the
                                       driver's glasses rims, or stops); [] for most sinks
    open_env() -> dict[str, str]       optional: environment variables open() needs; a
                                       `ThreadedSink` sets them from its caller's thread while
                                       its worker opens the sink (the window: Qt's log rules)

Sinks raise `SinkError` with a message that says what to do (install a device, pick another
sink). This module is what every sink module imports; `realtime.io.sinks` re-exports it (it
cannot live in the package's `__init__`, which imports the sink modules: that would be a circle).
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame

EVENTS = ("recalibrate", "toggle", "quit", "gain+", "gain-", "gain0", "glasses")  # and "gain:<region>"


class SinkError(PuppeteerError, RuntimeError):
    """A sink cannot be created, opened or written; the message says what to do."""


@runtime_checkable
class Sink(Protocol):
    """The sink protocol (see the module docstring)."""

    name: str

    def open(self, width: int, height: int, fps: float | None) -> None: ...

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...

    def poll_events(self) -> list[str]: ...


def checked_output(frame: Frame, size: tuple[int, int] | None, sink: str) -> np.ndarray:
    """frame.output checked against the contract: RGB uint8 (h, w, 3) of the opened size."""
    out = frame.output
    if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 3 \
            or out.shape[2] != 3:
        desc = (f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray)
                else type(out).__name__)
        raise SinkError(f"{sink} sink: frame {frame.index} output must be an RGB uint8 "
                        f"(H, W, 3) array, got {desc}")
    if size is not None and (out.shape[1], out.shape[0]) != size:
        raise SinkError(f"{sink} sink: frame {frame.index} output is {out.shape[1]}x"
                        f"{out.shape[0]} but the sink was opened at {size[0]}x{size[1]}")
    return out
