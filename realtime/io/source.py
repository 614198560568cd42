"""The frame-source contract: the `Source` protocol and the capture errors.

Source protocol (every source: camera, clip and image folder in `capture`, the scripted
performance in `performance`):

    fps: float                 nominal frames per second (a clip's own rate, a camera's reported rate)
    size: tuple[int, int]      (width, height) of the images it returns (after `resize`)
    is_live: bool              True for a camera: frames arrive at the device's pace
    frame_count: int | None    number of frames when known (clips, image folders), else None
    read() -> dict | None      the fields of the next `Frame` (e.g. {"image": rgb_uint8} or
                               {"state": ...}), or None once the source is exhausted; blocks
                               until the frame is available
    close()                    releases the device/file; safe to call more than once
    tracked: bool              optional, True when no frame needs tracking: each comes with its
                               landmarks (a tracked clip, `realtime.io.tracked`) or its state (the
                               scripted performance); the loop then never loads the tracker
    media_time: float | None   optional, the file's own time (s) of the frame `read` gave last (a
                               clip with a variable frame rate): a realtime `Grabber` holds each
                               frame till that time, and skips it when the next one is already due

This module sits below both `capture` (the sources) and `grabber` (the thread that reads any
source), so neither has to import the other.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from realtime.core.errors import PuppeteerError


class CaptureError(PuppeteerError, RuntimeError):
    """A source cannot be opened or read; the message names the source and what to check."""


class CaptureTimeout(CaptureError, TimeoutError):
    """`Grabber.get(timeout)` got no frame in time although the source has not finished."""


@runtime_checkable
class Source(Protocol):
    """The frame-source protocol (see the module docstring)."""

    fps: float
    size: tuple[int, int]
    is_live: bool
    frame_count: int | None

    def read(self) -> dict[str, Any] | None: ...

    def close(self) -> None: ...
