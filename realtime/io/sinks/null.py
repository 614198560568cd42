"""The null sink: discards frames (benchmarks, tests, `--sink null`)."""
from __future__ import annotations

from realtime.core.frame import Frame
from realtime.io.sinks.base import checked_output


class NullSink:
    """Discards frames; counts them (`frames_written`) and keeps the last one (`last`)."""

    name = "null"

    def __init__(self) -> None:
        self.size: tuple[int, int] | None = None
        self.fps: float | None = None
        self.frames_written = 0
        self.last: Frame | None = None

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        self.size, self.fps = (int(width), int(height)), fps

    def write(self, frame: Frame) -> None:
        checked_output(frame, self.size, self.name)
        self.frames_written += 1
        self.last = frame

    def close(self) -> None:
        pass

    def poll_events(self) -> list[str]:
        return []
