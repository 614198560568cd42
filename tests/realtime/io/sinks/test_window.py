"""The preview window sink without a display: hotkeys and display errors."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.io.sinks.base import SinkError
from realtime.io.sinks.window import WindowSink, key_to_event


def test_key_to_event():
    assert key_to_event(ord("n")) == "recalibrate"
    assert key_to_event(ord(" ")) == "toggle"
    assert key_to_event(ord("q")) == key_to_event(27) == "quit"
    assert key_to_event(-1) is None and key_to_event(ord("x")) is None
    assert key_to_event(0x100000 | ord("q")) == "quit"  # modifier bits are ignored
    assert key_to_event(0xFFAB) == "gain+" and key_to_event(0xFFB0) == "gain0"   # the number pad


def test_keys_without_a_character_do_nothing():
    """Before: cv2.waitKey's `& 0xFF` read X11 keysyms by their low byte: the Left arrow (0xFF51)
    quit the run as a 'Q', the Compose key (0xFF20) switched to passthrough as a space."""
    for key in (0xFF51, 0xFF52, 0xFF53, 0xFF54, 0xFF20, 0xFFE1, 0xFFBE, 0x250000, 0x100000 | 0xFF51):
        assert key_to_event(key) is None, hex(key)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux display rules")
def test_o_hides_and_shows_the_overlay(monkeypatch):
    """Before (stop 63's audit): in a 480 px swap window the overlay covered much of the face and
    no hotkey hid it."""
    from realtime.io.sinks import window

    keys = iter([ord("o"), -1, ord("O")])
    monkeypatch.setattr(window.cv2, "waitKeyEx", lambda ms: next(keys))
    monkeypatch.setattr(window.cv2, "getWindowProperty", lambda title, prop: 1.0)
    sink = WindowSink()
    sink._open = True
    assert sink.overlay
    assert sink.poll_events() == [] and not sink.overlay
    assert sink.poll_events() == [] and not sink.overlay
    assert sink.poll_events() == [] and sink.overlay


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


def test_qt_warnings_are_off_unless_the_user_set_rules(monkeypatch):
    """OpenCV's Qt GUI runs in the sink's worker thread and Qt stops its timers from the main
    thread at exit: every windowed run ended with two "QObject::killTimer: Timers cannot be
    stopped from another thread" lines (new-user review). Qt reads its rules when the first window
    is made: the quiet rule is in the environment while the worker makes it, set and taken out
    by the calling thread (code review: the worker changed the process's environment), so no
    child process inherits it; a user's own rules (QT_LOGGING_RULES, QT_LOGGING_CONF) are kept."""
    import threading

    from realtime.io.sinks import ThreadedSink, window
    from realtime.io.sinks.window import QT_QUIET

    seen, writers = [], []
    real_setitem = type(os.environ).__setitem__

    def named_window(title, flags):
        seen.append(os.environ.get("QT_LOGGING_RULES"))
        if len(seen) == 3:
            raise window.cv2.error("no Qt here")

    def setitem(env, key, value):
        if key == "QT_LOGGING_RULES":
            writers.append(threading.current_thread().name)
        real_setitem(env, key, value)

    def open_window():
        sink = ThreadedSink(WindowSink(), realtime=True)
        try:
            sink.open(64, 48, 30)
        finally:
            sink.close()

    monkeypatch.setattr(window, "_display_problem", lambda: None)
    monkeypatch.setattr(window.cv2, "namedWindow", named_window)
    monkeypatch.setattr(window.cv2, "destroyWindow", lambda title: None)
    monkeypatch.setenv("QT_LOGGING_RULES", "recorded")      # so that the undo restores the real state
    monkeypatch.delenv("QT_LOGGING_RULES")
    monkeypatch.delenv("QT_LOGGING_CONF", raising=False)
    monkeypatch.setattr(type(os.environ), "__setitem__", setitem)
    open_window()
    assert seen == [QT_QUIET] and "QT_LOGGING_RULES" not in os.environ
    assert writers == [threading.current_thread().name]      # set by the caller, not the worker
    monkeypatch.setenv("QT_LOGGING_RULES", "qt.*=true")
    open_window()
    assert seen[1] == "qt.*=true" and os.environ["QT_LOGGING_RULES"] == "qt.*=true"
    monkeypatch.delenv("QT_LOGGING_RULES")
    with pytest.raises(SinkError, match="no Qt here"):       # a failed window leaves nothing set either
        open_window()
    assert seen[2] == QT_QUIET and "QT_LOGGING_RULES" not in os.environ
    monkeypatch.setenv("QT_LOGGING_CONF", "/home/me/qtlogging.ini")   # the user's rules file
    open_window()
    assert seen[3] is None and "QT_LOGGING_RULES" not in os.environ


_WINDOWED_RUN = """
import numpy as np
from realtime.core.frame import Frame
from realtime.io.sinks.threaded import ThreadedSink
from realtime.io.sinks.window import WindowSink
sink = ThreadedSink(WindowSink(overlay=False), realtime=False)
sink.open(64, 48, 30.0)
for i in range(3):
    sink.write(Frame(index=i, t_capture=0.0, output=np.full((48, 64, 3), 40 * i, np.uint8)))
sink.close()
print("closed")
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt-get install xvfb)")
def test_a_windowed_run_ends_without_qt_warnings():
    env = {k: v for k, v in os.environ.items() if k != "QT_LOGGING_RULES"}
    done = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", _WINDOWED_RUN], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[4], env=env)
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr
    assert "QObject" not in done.stderr, done.stderr
