"""The preview window sink without a display: hotkeys and display errors."""
from __future__ import annotations

import sys

import pytest

from realtime.io.sinks.base import SinkError
from realtime.io.sinks.window import WindowSink, key_to_event


def test_key_to_event():
    assert key_to_event(ord("n")) == "recalibrate"
    assert key_to_event(ord(" ")) == "toggle"
    assert key_to_event(ord("q")) == key_to_event(27) == "quit"
    assert key_to_event(-1) is None and key_to_event(ord("x")) is None
    assert key_to_event(0x100000 | ord("q")) == "quit"  # modifier bits are ignored


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display rules")
def test_window_without_display_says_what_to_use(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError) as err:
        WindowSink().open(64, 48, 30)
    assert "--sink file:out.mp4" in str(err.value) and "null" in str(err.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display rules")
def test_window_with_unreachable_display_fails_cleanly(monkeypatch):
    # OpenCV's Qt aborts the process on a dead X display: the sink must find out first.
    monkeypatch.setenv("DISPLAY", ":987")
    with pytest.raises(SinkError, match=r"display ':987'.*--sink file:out.mp4"):
        WindowSink().open(64, 48, 30)
