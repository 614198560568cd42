"""The preview window sink (cv2.imshow) with its overlay and hotkeys."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import cv2

from realtime.core.frame import Frame
from realtime.io.sinks.base import SinkError, checked_output
from realtime.io.sinks.overlay import draw_overlay
from realtime.mesh.gains import REGIONS

_KEY_EVENTS = {ord("n"): "recalibrate", ord("N"): "recalibrate", ord(" "): "toggle",
               ord("q"): "quit", ord("Q"): "quit", 27: "quit",
               ord("+"): "gain+", ord("="): "gain+", ord("-"): "gain-", ord("_"): "gain-",
               ord("0"): "gain0", ord("g"): "glasses", ord("G"): "glasses",
               **{ord(str(i + 1)): f"gain:{region}" for i, region in enumerate(REGIONS)}}


#: The number pad's keys (X11/GTK keysyms) that mean what their characters do.
_KEYPAD = {0xFFAB: ord("+"), 0xFFAD: ord("-"), **{0xFFB0 + i: ord(str(i)) for i in range(6)}}

#: 'o' hides or shows the overlay (in a small window it covers much of the face).
OVERLAY_KEYS = (ord("o"), ord("O"))


def key_char(key: int | None) -> int | None:
    """cv2.waitKeyEx code -> the character's code (0-255), or None for a key that types none.
    Modifier bits above the key (GTK puts NumLock there) are dropped; a key without a character
    (an arrow, F1, Shift: X11 keysyms 0xFFxx, Windows' codes 0xNN0000) is None, never its low
    byte: cv2.waitKey's `& 0xFF` made the Left arrow (0xFF51) a 'Q', which quit the run."""
    if key is None or key < 0:
        return None
    key &= 0xFFFF
    key = _KEYPAD.get(key, key)
    return key if 0 < key <= 0xFF else None


def key_to_event(key: int) -> str | None:
    """cv2.waitKeyEx code -> event: 'n' recalibrate, space toggle, 'q'/Esc quit; '1'-'5' select a
    gain region (eyes, brows, mouth, gaze, pose), '+'/'-' change it by 0.1, '0' resets it; 'g'
    glasses (the swap keeps your glasses' rims, or stops); else None (`key_char`)."""
    char = key_char(key)
    return None if char is None else _KEY_EVENTS.get(char)


def _display_problem() -> str | None:
    """Why an OpenCV window cannot open here, or None when it can (or cannot be checked).

    On Linux, OpenCV's Qt build aborts the whole process when the X display is unreachable, so
    the display is tried in a child process first.
    """
    if not sys.platform.startswith("linux"):
        return None
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY"):
            return ("WAYLAND_DISPLAY is set but DISPLAY is not: OpenCV's window needs X11 "
                    "(XWayland)")
        return "no display (DISPLAY is not set)"
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        res = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot test display {os.environ['DISPLAY']!r}: {exc}"
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        return (f"cannot open a window on display {os.environ['DISPLAY']!r}: "
                f"{err[0] if err else 'exit ' + str(res.returncode)}")
    return None


#: Qt's logging rules while the first window is made (`WindowSink.open_env`; a user's
#: QT_LOGGING_RULES or QT_LOGGING_CONF wins).
QT_QUIET = "default.warning=false"


class WindowSink:
    """A preview window (cv2.imshow) with an overlay (landmarks, fps, per-stage ms, gains) and
    hotkeys: 'n' -> "recalibrate", space -> "toggle", 'q' / Esc / closing the window -> "quit",
    '1'-'5' / '+' / '-' / '0' -> the per-region gains, 'g' -> "glasses" (see `key_to_event`);
    'o' hides or shows the overlay (the sink's own: no event).

    All cv2 GUI calls happen in the thread that calls open()/write()/poll_events(): wrap it in
    `ThreadedSink`, which keeps them in its worker thread. `open()` raises SinkError when there
    is no display, advising `--sink file:out.mp4` or `--sink null`.
    """

    name = "window"

    def __init__(self, title: str = "Puppeteer", overlay: bool = True):
        self.title = title
        self.overlay = overlay
        self.size: tuple[int, int] | None = None
        self._open = False
        self._events: list[str] = []
        self._last_t: float | None = None
        self._fps: float | None = None

    def open_env(self) -> dict[str, str]:
        """What `open` needs in the environment (`ThreadedSink.open` sets it from the calling
        thread around the worker's `open`, and takes it out after).

        OpenCV's Qt GUI lives in the sink's worker thread (a slow window never stalls the loop),
        and Qt stops its timers from the main thread at the process's exit, printing
        "QObject::killTimer: Timers cannot be stopped from another thread" after every run:
        harmless, and alarming. Qt reads its logging rules once, when the first window makes its
        application: its default-category warnings are off for that, unless the user set their
        own rules (QT_LOGGING_RULES or a QT_LOGGING_CONF file)."""
        if {"QT_LOGGING_RULES", "QT_LOGGING_CONF"} & set(os.environ):
            return {}
        return {"QT_LOGGING_RULES": QT_QUIET}

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        problem = _display_problem()
        if problem is None:
            try:
                cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
            except cv2.error as exc:
                problem = f"OpenCV cannot open a window: {str(exc).strip()}"
        if problem is not None:
            raise SinkError(f"window sink: {problem}; use --sink file:out.mp4 or --sink null")
        self.size = (int(width), int(height))
        self._open = True

    def _pump(self) -> None:
        key = cv2.waitKeyEx(1)      # not waitKey: its `& 0xFF` makes the Left arrow a 'Q'
        if key_char(key) in OVERLAY_KEYS:
            self.overlay = not self.overlay     # the window's own: the output is never drawn on
        event = key_to_event(key)
        if event:
            self._events.append(event)
        try:
            visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            visible = 0
        if visible < 1 and "quit" not in self._events:
            self._events.append("quit")  # the user closed the window

    def write(self, frame: Frame) -> None:
        if not self._open:
            raise SinkError("window sink: write() before open()")
        out = checked_output(frame, self.size, self.name)
        now = time.perf_counter()
        if self._last_t is not None and now > self._last_t:
            inst = 1.0 / (now - self._last_t)
            self._fps = inst if self._fps is None else 0.9 * self._fps + 0.1 * inst
        self._last_t = now
        if self.overlay:
            out = draw_overlay(out, frame, self._fps)
        cv2.imshow(self.title, cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        self._pump()

    def poll_events(self) -> list[str]:
        """Events since the last call (also pumps the GUI; call from the window's thread)."""
        if self._open:
            self._pump()
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
