"""Sinks: where output frames go (virtual camera, preview window, mp4 file, nowhere).

A tiny public API over a registry of backends (in the manner of pyvirtualcam's Camera over its
BACKENDS): `make_sink(spec, fps)` builds a sink from a command-line spec, `SINKS` lists the
backends, and every sink follows the `Sink` protocol (realtime.io.sinks.base):

    name: str                          short name for logs ("null", "file", "vcam", "window")
    open(width, height, fps)           prepare for frames of that size; fps may be None
    write(frame: Frame)                consume `frame.output`, RGB uint8 (height, width, 3)
    close()                            flush and release; safe to call more than once
    poll_events() -> list[str]         hotkey events since the last call, each one of `EVENTS`
                                       (realtime.io.sinks.base); [] for most sinks

Sinks raise `SinkError` with a message that says what to do (install a device, pick another
sink); `check_sink(spec, ...)` raises it before the engine starts, for what can be known then.
`ThreadedSink` wraps any sink so that the loop never waits for it (DESIGN §7: a sink never
blocks the loop).

Modules: base (protocol, SinkError), null, file (ffmpeg mp4), vcam (pyvirtualcam), window
(preview window and hotkeys), overlay (what the window draws), threaded (ThreadedSink).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from realtime.io.sinks.base import EVENTS, Sink, SinkError
from realtime.io.sinks.file import FileSink, check_output, overwrites_input
from realtime.io.sinks.null import NullSink
from realtime.io.sinks.overlay import draw_overlay
from realtime.io.sinks.threaded import ThreadedSink
from realtime.io.sinks.vcam import VirtualCameraSink, vcam_install_hint
from realtime.io.sinks.window import WindowSink, key_to_event

__all__ = ["EVENTS", "SINKS", "FileSink", "check_output", "check_sink", "NullSink", "Sink", "SinkError", "ThreadedSink",
           "VirtualCameraSink", "WindowSink", "draw_overlay", "key_to_event", "make_sink", "overwrites_input",
           "sink_file", "vcam_install_hint"]


# The factories look the classes up in this module's namespace when called, so a test that
# replaces e.g. `realtime.io.sinks.VirtualCameraSink` replaces what make_sink builds too.

def _null(arg: str | None, fps: float | None, **_) -> NullSink:
    if arg:
        raise SinkError(f"the null sink takes no argument, got 'null:{arg}'")
    return NullSink()


def _file(arg: str | None, fps: float | None, overwrite: bool = False, protect=(), **_) -> FileSink:
    return FileSink(arg or "", fps, overwrite=overwrite, protect=protect)


def _vcam(arg: str | None, fps: float | None, **_) -> VirtualCameraSink:
    return VirtualCameraSink(fps, device=arg or None)


def _window(arg: str | None, fps: float | None, **_) -> WindowSink:
    return WindowSink(arg or "Puppeteer")


SINKS: dict[str, tuple[Callable[..., Sink], str]] = {
    "null": (_null, "null"),
    "file": (_file, "file:OUT.mp4"),
    "vcam": (_vcam, "vcam[:DEVICE]"),
    "window": (_window, "window[:TITLE]"),
}


def _parse(spec: str) -> tuple[str, str]:
    """(the sink's name, its argument) of a spec: the part after the first ':' is the argument
    (so Windows paths like file:C:\\out.mp4 work). SinkError listing the choices for an unknown
    name."""
    name, _, arg = str(spec).partition(":")
    key = name.strip().lower()
    if key not in SINKS:
        choices = ", ".join(usage for _, usage in SINKS.values())
        raise SinkError(f"unknown sink {spec!r}; choose one of: {choices}")
    return key, arg


def check_sink(spec: str, overwrite: bool = False, protect=()) -> None:
    """Check, before anything starts, what can be checked of a sink spec without opening it:
    its name, and a file sink's output (`check_output`: a path given, container, writable
    folder, an existing file without `overwrite`, a file the run reads). SinkError says what to
    change."""
    key, arg = _parse(spec)
    if key == "file":
        check_output(arg, overwrite, protect)


def sink_file(spec: str) -> Path | None:
    """The file a sink spec writes (a file sink's path, user expanded), None for the other
    sinks; SinkError for an unknown sink name."""
    key, arg = _parse(spec)
    return Path(arg).expanduser() if key == "file" and arg.strip() else None


def make_sink(spec: str, fps: float | None, overwrite: bool = False, protect=()) -> Sink:
    """Build a sink from a spec: "null" | "file:OUT.mp4" | "vcam[:DEVICE]" | "window[:TITLE]".

    The part after the first ':' is the argument (so Windows paths like file:C:\\out.mp4 work).
    Unknown names raise SinkError listing the choices. `overwrite` and `protect` (files the
    output must not be: the driver) are the file sink's (`FileSink`).
    """
    key, arg = _parse(spec)
    return SINKS[key][0](arg or None, fps, overwrite=overwrite, protect=protect)
