"""Sinks: where output frames go (virtual camera, preview window, mp4 file, nowhere).

Sink protocol:

    name: str                          short name for logs ("null", "file", "vcam", "window")
    open(width, height, fps)           prepare for frames of that size; fps may be None
    write(frame: Frame)                consume `frame.output`, RGB uint8 (height, width, 3)
    close()                            flush and release; safe to call more than once
    poll_events() -> list[str]         hotkey events since the last call, each one of
                                       "recalibrate", "toggle", "quit"; [] for most sinks

Sinks raise `SinkError` with a message that says what to do (install a device, pick another
sink). `make_sink(spec, fps)` builds one from a command-line spec; `ThreadedSink` wraps any sink
so that the loop never waits for it (DESIGN §7: a sink never blocks the loop).
"""
from __future__ import annotations

import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame

EVENTS = ("recalibrate", "toggle", "quit")


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


def _output_of(frame: Frame, size: tuple[int, int] | None, sink: str) -> np.ndarray:
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
        _output_of(frame, self.size, self.name)
        self.frames_written += 1
        self.last = frame

    def close(self) -> None:
        pass

    def poll_events(self) -> list[str]:
        return []


class FileSink:
    """H.264 mp4 (yuv420p, +faststart: plays in browsers and players) via FFmpeg.

    Frames go to imageio_ffmpeg's ffmpeg binary as raw rgb24 through a stdin pipe. Odd widths or
    heights are padded by one black pixel to even (yuv420p needs even sizes).

    Args:
        path: output file; its folder must exist (SinkError otherwise, raised here).
        fps: frame rate of the file; `open(..., fps)` overrides it when given (not None).
        crf, preset: x264 quality/speed (defaults: visually lossless-ish, fast enough for 2 cores).
    """

    name = "file"

    def __init__(self, path: str | os.PathLike, fps: float | None = 30.0, crf: int = 18,
                 preset: str = "veryfast"):
        self.path = Path(path).expanduser()
        folder = self.path.parent
        if not folder.is_dir():
            raise SinkError(f"file sink: folder {str(folder)!r} for {str(self.path)!r} does "
                            f"not exist; create it first")
        self.fps = fps
        self.crf, self.preset = int(crf), preset
        self.size: tuple[int, int] | None = None
        self.frames_written = 0
        self._proc: subprocess.Popen | None = None
        self._stderr = None

    def command(self, width: int, height: int, fps: float) -> list[str]:
        """The ffmpeg command line for frames of `width` x `height` at `fps`."""
        import imageio_ffmpeg

        return [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                "-framerate", f"{fps:g}", "-i", "pipe:0",
                "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", str(self.path)]

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        if self._proc is not None:
            raise SinkError(f"file sink {str(self.path)!r} is already open")
        if not self.path.parent.is_dir():
            raise SinkError(f"file sink: folder {str(self.path.parent)!r} does not exist")
        fps = fps if fps is not None else self.fps
        if fps is None or not fps > 0:
            raise SinkError(f"file sink: need a positive fps, got {fps!r}")
        self.fps = float(fps)
        self.size = (int(width), int(height))
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: ffmpeg can never block on it
        try:
            self._proc = subprocess.Popen(self.command(*self.size, self.fps),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr)
        except OSError as exc:
            raise SinkError(f"file sink: cannot start ffmpeg from imageio_ffmpeg: {exc}") from exc

    def _ffmpeg_errors(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def write(self, frame: Frame) -> None:
        if self._proc is None:
            raise SinkError(f"file sink {str(self.path)!r}: write() before open()")
        out = _output_of(frame, self.size, self.name)
        try:
            self._proc.stdin.write(np.ascontiguousarray(out).data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            proc, self._proc = self._proc, None
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            message = (f"file sink: ffmpeg stopped while writing {str(self.path)!r} "
                       f"(exit {proc.returncode}): {self._ffmpeg_errors() or exc}")
            self._stderr.close()
            self._stderr = None
            raise SinkError(message) from exc
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file; raises SinkError when ffmpeg reports a failure."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                raise SinkError(f"file sink: ffmpeg failed writing {str(self.path)!r} "
                                f"(exit {proc.returncode}): {self._ffmpeg_errors()}")
        finally:
            self._stderr.close()
            self._stderr = None

    def poll_events(self) -> list[str]:
        return []


def vcam_install_hint(system: str | None = None) -> str:
    """What to install for a virtual camera on `system` (platform.system(); default this OS)."""
    system = system or platform.system()
    if system == "Linux":
        return ("install and load v4l2loopback: `sudo apt install v4l2loopback-dkms`, then "
                "`sudo modprobe v4l2loopback devices=1 exclusive_caps=1 "
                "card_label=\"Puppeteer\"`")
    if system in ("Windows", "Darwin"):
        return ("install OBS Studio (https://obsproject.com) and start its Virtual Camera once "
                "(Start Virtual Camera) so the device is registered")
    return f"virtual cameras are not supported on {system!r} by pyvirtualcam"


class VirtualCameraSink:
    """A virtual camera (pyvirtualcam: v4l2loopback on Linux, OBS Virtual Camera elsewhere)
    that Zoom, Meet, Teams, OBS or Discord can pick.

    Args:
        fps: frame rate announced to the device; `open(..., fps)` overrides it when given.
        backend: pyvirtualcam backend name ("v4l2loopback", "obs", "unitycapture"), None = any.
        device: a specific device (e.g. "/dev/video10"), None = the first free one.

    pyvirtualcam is imported here (lazily: importing this module never needs it). `open()`
    raises SinkError when no backend is usable, with what to install for this OS and the
    underlying error text.
    """

    name = "vcam"

    def __init__(self, fps: float | None = 30.0, backend: str | None = None,
                 device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise SinkError(f"virtual camera: pyvirtualcam is not installed "
                            f"(`pip install pyvirtualcam`), and {vcam_install_hint()}: {exc}"
                            ) from exc
        self._pyvirtualcam = pyvirtualcam
        self.fps, self.backend, self.device = fps, backend, device
        self.size: tuple[int, int] | None = None
        self._cam = None

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        fps = fps if fps is not None else self.fps
        if fps is None or not fps > 0:
            raise SinkError(f"virtual camera: need a positive fps, got {fps!r}")
        backends = sorted(self._pyvirtualcam.camera.BACKENDS)
        if self.backend is not None and self.backend not in backends:
            raise SinkError(f"virtual camera: unknown backend {self.backend!r} on "
                            f"{platform.system()}; available: {backends}")
        try:
            self._cam = self._pyvirtualcam.Camera(
                int(width), int(height), float(fps), fmt=self._pyvirtualcam.PixelFormat.RGB,
                backend=self.backend, device=self.device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError with every backend's error
            detail = str(exc).strip() or type(exc).__name__
            if not backends:
                detail = f"pyvirtualcam has no backend for {platform.system()}"
            raise SinkError(f"virtual camera: no usable device ({width}x{height} @ {fps:g} fps)"
                            f"; {vcam_install_hint()}.\nUnderlying error: {detail}") from exc
        self.size, self.fps = (int(width), int(height)), float(fps)

    def write(self, frame: Frame) -> None:
        if self._cam is None:
            raise SinkError("virtual camera: write() before open()")
        self._cam.send(_output_of(frame, self.size, self.name))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()

    def poll_events(self) -> list[str]:
        return []

    @property
    def device_name(self) -> str | None:
        """The device in use once open (e.g. "/dev/video10", "OBS Virtual Camera")."""
        return None if self._cam is None else self._cam.device


# ---------------------------------------------------------------------------------------------
# Preview window
# ---------------------------------------------------------------------------------------------

_KEY_EVENTS = {ord("n"): "recalibrate", ord("N"): "recalibrate", ord(" "): "toggle",
               ord("q"): "quit", ord("Q"): "quit", 27: "quit"}


def key_to_event(key: int) -> str | None:
    """cv2.waitKey code -> event: 'n' recalibrate, space toggle, 'q'/Esc quit, else None."""
    if key is None or key < 0:
        return None
    return _KEY_EVENTS.get(key & 0xFF)


def draw_overlay(image: np.ndarray, frame: Frame, fps: float | None) -> np.ndarray:
    """A copy of `image` (RGB uint8) with the preview overlay; `image` is not modified.

    Draws frame.landmarks (if present) as small green dots (their coordinates are driver-image
    pixels; they are scaled when frame.image has another size than `image`), and in the top-left
    corner, on a dark box: the fps, then one line per entry of frame.timings ("stage  1.2 ms")
    and their total.
    """
    out = np.array(image, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    lm = frame.landmarks
    if lm is not None and len(lm):
        xy = np.asarray(lm, dtype=np.float32)[:, :2].copy()
        if isinstance(frame.image, np.ndarray) and frame.image.shape[:2] != (h, w):
            ih, iw = frame.image.shape[:2]
            xy *= (w / iw, h / ih)
        xy = xy[np.isfinite(xy).all(axis=1)]
        px = np.round(xy).astype(np.int64)
        px = px[(px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)]
        for dy in (0, 1):  # 2x2 dots, vectorised (478 cv2.circle calls cost ~1 ms)
            for dx in (0, 1):
                out[np.minimum(px[:, 1] + dy, h - 1), np.minimum(px[:, 0] + dx, w - 1)] = \
                    (0, 255, 0)
    lines = [f"{fps:5.1f} fps" if fps is not None else "  --  fps"]
    if frame.timings:
        width = max(len(k) for k in frame.timings)
        lines += [f"{k:<{width}} {v:6.2f} ms" for k, v in frame.timings.items()]
        lines.append(f"{'total':<{width}} {sum(frame.timings.values()):6.2f} ms")
    zoom = max(1.0, h / 480.0)  # readable on HD outputs too
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * zoom, max(1, int(round(zoom)))
    line_h = int(round(14 * zoom))
    text_w = max(cv2.getTextSize(s, font, scale, thick)[0][0] for s in lines)
    box = out[0:min(h, 6 + line_h * len(lines)), 0:min(w, text_w + 10)]
    box[:] = box // 3  # darken for contrast
    for i, s in enumerate(lines):
        cv2.putText(out, s, (5, line_h * (i + 1)), font, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return out


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


class WindowSink:
    """A preview window (cv2.imshow) with an overlay (landmarks, fps, per-stage ms) and hotkeys:
    'n' -> "recalibrate", space -> "toggle", 'q' / Esc / closing the window -> "quit".

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
        event = key_to_event(cv2.waitKey(1))
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
        out = _output_of(frame, self.size, self.name)
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


# ---------------------------------------------------------------------------------------------
# Construction from a spec
# ---------------------------------------------------------------------------------------------

def _null(arg: str | None, fps: float | None) -> NullSink:
    if arg:
        raise SinkError(f"the null sink takes no argument, got 'null:{arg}'")
    return NullSink()


def _file(arg: str | None, fps: float | None) -> FileSink:
    if not arg:
        raise SinkError("the file sink needs a path: file:OUT.mp4")
    return FileSink(arg, fps)


def _vcam(arg: str | None, fps: float | None) -> VirtualCameraSink:
    return VirtualCameraSink(fps, device=arg or None)


def _window(arg: str | None, fps: float | None) -> WindowSink:
    return WindowSink(arg or "Puppeteer")


SINKS: dict[str, tuple[Callable[[str | None, float | None], Sink], str]] = {
    "null": (_null, "null"),
    "file": (_file, "file:OUT.mp4"),
    "vcam": (_vcam, "vcam[:DEVICE]"),
    "window": (_window, "window[:TITLE]"),
}


def make_sink(spec: str, fps: float | None) -> Sink:
    """Build a sink from a spec: "null" | "file:OUT.mp4" | "vcam[:DEVICE]" | "window[:TITLE]".

    The part after the first ':' is the argument (so Windows paths like file:C:\\out.mp4 work).
    Unknown names raise SinkError listing the choices.
    """
    name, _, arg = str(spec).partition(":")
    entry = SINKS.get(name.strip().lower())
    if entry is None:
        choices = ", ".join(usage for _, usage in SINKS.values())
        raise SinkError(f"unknown sink {spec!r}; choose one of: {choices}")
    return entry[0](arg or None, fps)


# ---------------------------------------------------------------------------------------------
# Never block the loop
# ---------------------------------------------------------------------------------------------

_CLOSE = object()


class ThreadedSink:
    """Runs a sink in a worker thread so that `write()` never stalls the loop.

    Args:
        sink: the inner sink; all its methods (open, write, poll_events, close) are called from
            the worker thread only, which keeps cv2 GUI calls in one thread.
        realtime: True -> a 1-slot mailbox: the newest frame wins, a frame replaced before the
            worker took it is counted in `sink_dropped`; write() returns at once.
            False -> a bounded queue of `queue_size`: write() waits for room (back-pressure),
            so a file gets every frame.
        on_written: optional callback(frame), called in the worker thread after the inner sink
            accepted the frame and `frame.t_sink` was set.
        poll_interval: how often (s) the idle worker polls the inner sink's events.

    After write() the frame belongs to the sink: do not modify frame.output afterwards.
    `frame.t_sink = time.perf_counter()` is set right after the inner write() returned.
    An exception in the worker (from the inner sink or on_written) is raised by the next
    write() (and every later one) or, if no write() raised it, by close(); the worker stops.
    `poll_events()` returns the events the worker collected from the inner sink (it polls after
    every write and every `poll_interval` while idle).
    """

    def __init__(self, sink: Sink, realtime: bool, queue_size: int = 8,
                 on_written: Callable[[Frame], None] | None = None,
                 poll_interval: float = 0.03, close_timeout: float = 30.0):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.sink = sink
        self.realtime = bool(realtime)
        self.on_written = on_written
        self._capacity = 1 if self.realtime else int(queue_size)
        self._poll_interval = poll_interval
        self._close_timeout = close_timeout
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._open_error: BaseException | None = None
        self._error: BaseException | None = None
        self._error_raised = False
        self._closing = False
        self._sink_dropped = 0
        self._written = 0

    @property
    def name(self) -> str:
        return self.sink.name

    @property
    def sink_dropped(self) -> int:
        """Frames replaced in the realtime mailbox before the worker wrote them."""
        return self._sink_dropped

    @property
    def written(self) -> int:
        """Frames the inner sink accepted."""
        return self._written

    def open(self, width: int, height: int, fps: float | None = None) -> None:
        """Start the worker and open the inner sink in it; raises the inner open()'s error."""
        if self._thread is not None:
            raise SinkError(f"{self.name} sink: open() called twice")
        self._thread = threading.Thread(target=self._run, args=(width, height, fps),
                                        name=f"sink:{self.name}", daemon=True)
        self._thread.start()
        self._opened.wait()
        if self._open_error is not None:
            self._thread.join()
            raise self._open_error

    def _raise_error(self) -> None:
        if self._error is not None:
            self._error_raised = True
            raise self._error

    def write(self, frame: Frame) -> None:
        """Hand `frame` to the worker (realtime: never waits; else waits while the queue is full)."""
        if self._thread is None:
            raise SinkError(f"{self.name} sink: write() before open()")
        with self._cond:
            self._raise_error()
            if self._closing:
                raise SinkError(f"{self.name} sink: write() after close()")
            if self.realtime:
                if self._items:
                    self._items.clear()
                    self._sink_dropped += 1
            else:
                while len(self._items) >= self._capacity and self._error is None:
                    self._cond.wait(0.1)
                self._raise_error()
            self._items.append(frame)
            self._cond.notify_all()

    def poll_events(self) -> list[str]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        """Write what is pending, close the inner sink and join the worker.

        Raises the worker's error if no write() raised it yet, and SinkError if the worker does
        not finish within `close_timeout` seconds. Idempotent.
        """
        thread = self._thread
        if thread is None:
            return
        with self._cond:
            if not self._closing:
                self._closing = True
                self._items.append(_CLOSE)
                self._cond.notify_all()
        if thread is not threading.current_thread():
            thread.join(self._close_timeout)
            if thread.is_alive():
                raise SinkError(f"{self.name} sink did not finish closing within "
                                f"{self._close_timeout} s")
        if self._error is not None and not self._error_raised:
            self._raise_error()

    def __enter__(self) -> "ThreadedSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- worker ------------------------------------------------------------------------------
    def _poll_inner(self) -> None:
        for event in self.sink.poll_events():
            self._events.put(event)

    def _run(self, width: int, height: int, fps: float | None) -> None:
        try:
            self.sink.open(width, height, fps)
        except BaseException as exc:  # noqa: BLE001 - raised by open()
            self._open_error = exc
            self._opened.set()
            return
        self._opened.set()
        try:
            while True:
                with self._cond:
                    while not self._items:
                        self._cond.wait(self._poll_interval)
                        if not self._items:
                            break
                    item = self._items.popleft() if self._items else None
                    self._cond.notify_all()
                if item is None:
                    self._poll_inner()
                    continue
                if item is _CLOSE:
                    break
                self.sink.write(item)
                item.t_sink = time.perf_counter()
                self._written += 1
                if self.on_written is not None:
                    self.on_written(item)
                self._poll_inner()
        except BaseException as exc:  # noqa: BLE001 - surfaced by write()/close()
            with self._cond:
                self._error = exc
                self._items.clear()
                self._cond.notify_all()
        finally:
            try:
                self.sink.close()
            except BaseException as exc:  # noqa: BLE001
                with self._cond:
                    if self._error is None:
                        self._error = exc
