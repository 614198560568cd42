"""Capture: frame sources (camera, clip, folder of images) and the `Grabber` capture thread.

Source protocol (every source, including the lead's scripted-performance source):

    fps: float                 nominal frames per second (a clip's own rate, a camera's reported rate)
    size: tuple[int, int]      (width, height) of the images it returns (after `resize`)
    is_live: bool              True for a camera: frames arrive at the device's pace
    frame_count: int | None    number of frames when known (clips, image folders), else None
    read() -> dict | None      the fields of the next `Frame` (e.g. {"image": rgb_uint8} or
                               {"state": ...}), or None once the source is exhausted; blocks
                               until the frame is available
    close()                    releases the device/file; safe to call more than once

Images are RGB uint8 (H, W, 3): sources convert from OpenCV's BGR once, here. An optional
`resize=(w, h)` is applied once per frame with cv2.INTER_AREA.

`Grabber(source, realtime)` runs `source.read()` in its own thread and hands out
`realtime.core.frame.Frame` records (index = capture order counting dropped frames, t_capture =
time.perf_counter() right after the read). In realtime mode it keeps only the newest frame (latest
frame wins, drops are counted); otherwise every frame is delivered in order with back-pressure.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator, Protocol, runtime_checkable

import cv2
import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_CLIP_FPS = 30.0


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


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log output (e.g. "can't open camera by index") inside the block.

    The previous log level is restored on exit.
    """
    previous = cv2.getLogLevel()
    cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


def _check_resize(resize: tuple[int, int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    w, h = (int(v) for v in resize)
    if w <= 0 or h <= 0:
        raise ValueError(f"resize must be a positive (width, height), got {resize!r}")
    return (w, h)


def _to_rgb(bgr: np.ndarray, resize: tuple[int, int] | None) -> np.ndarray:
    """OpenCV BGR/gray/BGRA image -> RGB uint8, resized with INTER_AREA when `resize` differs."""
    if bgr.ndim == 2:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    elif bgr.shape[2] == 4:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    else:
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.dtype != np.uint8:
        rgb = cv2.convertScaleAbs(rgb, alpha=255.0 / max(float(rgb.max()), 1.0))
    if resize is not None and (rgb.shape[1], rgb.shape[0]) != resize:
        rgb = cv2.resize(rgb, resize, interpolation=cv2.INTER_AREA)
    return rgb


class CameraSource:
    """A webcam through cv2.VideoCapture.

    Args:
        index: camera index (0 = the first camera).
        size: requested capture (width, height); the driver may choose another mode, in which
            case frames are resized to `size` so the engine always gets what it asked for.
        fps: requested frame rate (a hint for the driver); `self.fps` is the rate it reports.
        resize: (width, height) applied to every frame (overrides `size` for the output size).
        fourcc: requested pixel format, e.g. "MJPG": USB webcams usually need it for 720p and
            above at 30/60 fps (raw YUYV is limited by USB 2 bandwidth). None = driver default.
        api: an OpenCV capture API (cv2.CAP_*); None = DirectShow on Windows (MSMF opens
            slowly), falling back to OpenCV's default, and OpenCV's default elsewhere.

    Raises CaptureError when the camera cannot be opened or delivers no first frame.
    `read()` raises CaptureError when the camera stops delivering frames (unplugged, taken by
    another application); it never returns None by itself.
    """

    is_live = True
    frame_count = None
    MAX_FAILED_READS = 5

    def __init__(self, index: int, size: tuple[int, int] | None = None,
                 fps: float | None = None, resize: tuple[int, int] | None = None,
                 fourcc: str | None = None, api: int | None = None):
        self.index = int(index)
        if api is None and sys.platform == "win32":
            apis = [cv2.CAP_DSHOW, cv2.CAP_ANY]
        else:
            apis = [cv2.CAP_ANY if api is None else int(api)]
        with quiet_opencv():
            for preference in apis:
                cap = cv2.VideoCapture(self.index, preference)
                if cap.isOpened():
                    break
                cap.release()
        if not cap.isOpened():
            cap.release()
            raise CaptureError(
                f"cannot open camera {self.index}: check that a webcam is connected, that no "
                f"other application (Zoom, OBS, a browser tab) is using it, that this user may "
                f"access it (Linux: /dev/video{self.index} and the 'video' group; macOS/Windows: "
                f"the camera privacy permission for this terminal), or try another index "
                f"(`python run.py devices` shows what was found)")
        self._cap = cap
        if fourcc is not None:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        if size is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(size[0]))
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(size[1]))
        if fps is not None:
            cap.set(cv2.CAP_PROP_FPS, float(fps))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer stale frames inside the driver (if honoured)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise CaptureError(
                f"camera {self.index} opened but delivered no frame: check that no other "
                f"application is using it and that the requested size {size} / fps {fps} is a "
                f"mode it supports")
        self._resize = _check_resize(resize) or _check_resize(size)
        # The probe frame only tells the size: it would be stale (and its latency wrong) by the
        # time the loop starts, so read() always grabs a fresh frame.
        h, w = first.shape[:2]
        self.size = self._resize or (w, h)
        reported = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(reported) if reported and reported > 0 else float(fps or DEFAULT_CLIP_FPS)
        self._closed = False

    def read(self) -> dict[str, Any] | None:
        """Next camera frame as {"image": RGB uint8}; blocks until the camera delivers it."""
        if self._closed:
            return None
        for _ in range(self.MAX_FAILED_READS):
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                return {"image": _to_rgb(bgr, self._resize)}
        raise CaptureError(f"camera {self.index} stopped delivering frames "
                           f"({self.MAX_FAILED_READS} failed reads in a row): was it unplugged "
                           f"or taken by another application?")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()

    def __repr__(self) -> str:
        return f"CameraSource({self.index}, size={self.size}, fps={self.fps:g})"


class ClipSource:
    """Any video file OpenCV can decode, as a source of RGB frames.

    Args:
        path: the video file.
        resize: (width, height) applied to every frame.
        fps: override for the nominal rate; default the file's rate, or 30 when the file
            reports none (0 or NaN).

    Raises CaptureError for a missing file, or one OpenCV cannot open or decode (the first frame
    is decoded here to find out). `read()` returns None at the end of the file.
    """

    is_live = False

    def __init__(self, path: str | os.PathLike, resize: tuple[int, int] | None = None,
                 fps: float | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise CaptureError(f"video file not found: {str(self.path)!r}")
        with quiet_opencv():
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise CaptureError(f"cannot open video file {str(self.path)!r}: OpenCV (FFmpeg) does "
                               f"not recognise it as a video; check the file is complete and in a "
                               f"common format (mp4/H.264, webm, avi)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise CaptureError(f"cannot decode any frame of video file {str(self.path)!r}: it "
                               f"may be empty, truncated or use a codec OpenCV lacks")
        self._cap = cap
        self._resize = _check_resize(resize)
        self._pending: np.ndarray | None = first
        h, w = first.shape[:2]
        self.size = self._resize or (w, h)
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        if fps is not None:
            self.fps = float(fps)
        elif file_fps and np.isfinite(file_fps) and file_fps > 0:
            self.fps = float(file_fps)
        else:
            self.fps = DEFAULT_CLIP_FPS
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = n if n > 0 else None
        self._closed = False

    def read(self) -> dict[str, Any] | None:
        """Next frame as {"image": RGB uint8}, or None at the end of the file."""
        if self._closed:
            return None
        if self._pending is not None:
            bgr, self._pending = self._pending, None
        else:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
        return {"image": _to_rgb(bgr, self._resize)}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()

    def __repr__(self) -> str:
        return f"ClipSource({str(self.path)!r}, size={self.size}, fps={self.fps:g})"


def _natural_key(path: Path) -> list:
    """Sort key that orders frame2.png before frame10.png."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", path.name)]


class ImageDirSource:
    """A folder of still images (jpg/jpeg/png/bmp, any case) played as a video.

    Files are taken in natural name order (frame2 before frame10). Every frame has the size of
    the first image (later images of another size are resized to it), or `resize` when given.

    Raises CaptureError when the folder does not exist or holds no image; `read()` raises
    CaptureError naming a file OpenCV cannot decode and returns None after the last image.
    """

    is_live = False

    def __init__(self, path: str | os.PathLike, fps: float = 30.0,
                 resize: tuple[int, int] | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise CaptureError(f"image folder not found: {str(self.path)!r}")
        self._files = sorted((p for p in self.path.iterdir()
                              if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                             key=_natural_key)
        if not self._files:
            raise CaptureError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder "
                               f"{str(self.path)!r}")
        if fps is None or not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps)
        self.frame_count: int | None = len(self._files)
        first = self._load(self._files[0])
        self._resize = _check_resize(resize) or (first.shape[1], first.shape[0])
        self.size = self._resize
        self._next = 0

    def _load(self, file: Path) -> np.ndarray:
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CaptureError(f"cannot decode image {str(file)!r}")
        return bgr

    def read(self) -> dict[str, Any] | None:
        """Next image as {"image": RGB uint8}, or None after the last one."""
        if self._next >= len(self._files):
            return None
        file = self._files[self._next]
        self._next += 1
        return {"image": _to_rgb(self._load(file), self._resize)}

    def close(self) -> None:
        self._next = len(self._files)

    def __repr__(self) -> str:
        return f"ImageDirSource({str(self.path)!r}, {len(self._files)} images, fps={self.fps:g})"


def open_source(spec: str, size: tuple[int, int] | None = None,
                fps: float | None = None) -> Source:
    """Open a source from a command-line spec.

    - "0", "1", ... (or "/dev/videoN") -> CameraSource(N, size=size, fps=fps): `size` is the
      requested capture size, `fps` the requested rate. A digit string is always a camera,
      even if a file of that name exists.
    - an existing directory -> ImageDirSource(spec, fps=fps or 30, resize=size)
    - an existing file      -> ClipSource(spec, resize=size, fps=fps) (fps None = the file's rate)
    - anything else         -> CaptureError("... is neither a camera index, a video file nor a
      folder of images")
    """
    text = str(spec).strip()
    device = re.fullmatch(r"(?:/dev/video)?(\d+)", text)
    if device:
        return CameraSource(int(device.group(1)), size=size, fps=fps)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageDirSource(path, fps=fps or 30.0, resize=size)
    if path.is_file():
        return ClipSource(path, resize=size, fps=fps)
    raise CaptureError(f"{spec!r} is neither a camera index, a video file nor a folder of images")


class Grabber:
    """Reads a source in a background thread and hands out `Frame` records.

    Args:
        source: anything implementing the Source protocol; its dicts become Frame fields, so
            {"image": ...} and {"state": ...} both work.
        realtime: True -> behave like a live camera: a live source is read as fast as it
            delivers; a file source (is_live False) is paced at `source.fps` against an absolute
            schedule (no drift; if reading falls more than a frame behind, the schedule restarts
            from now instead of bursting). Only the newest frame is kept (a 1-frame slot): if the
            previous frame was not taken by `get()` before a new one arrives it is dropped and
            counted in `dropped`.
            False -> every frame is delivered in order, none dropped: a bounded queue of
            `queue_size` frames; the reader thread waits while it is full. No pacing.
        queue_size: capacity of the non-realtime queue.
        close_source: close the source when the thread ends (default True).

    Frame fields: index = capture order (0-based, dropped frames included, so gaps in the
    indices seen by the loop show the drops), t_capture = time.perf_counter() just after
    `source.read()` returned, plus the source's dict.

    Errors raised by the source in the thread are not lost: frames read before the error are
    still delivered, then `get()` raises the source's exception (the same object, every call).

    Usable as a context manager (start on enter, stop on exit).
    """

    def __init__(self, source: Source, realtime: bool, queue_size: int = 8,
                 close_source: bool = True):
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.source = source
        self.realtime = bool(realtime)
        self._capacity = 1 if self.realtime else int(queue_size)
        self._close_source = close_source
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended = False          # the reader thread has finished (end, error or stop)
        self._error: BaseException | None = None
        self._dropped = 0
        self._delivered = 0
        self._captured = 0
        self._next_index = 0         # capture indices; held frames (see `held_frame`) take one too

    # -- counters ---------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Frames replaced in the realtime slot before `get()` took them."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Frames returned by `get()`."""
        return self._delivered

    @property
    def captured(self) -> int:
        """Frames read from the source so far (= delivered + dropped + pending)."""
        return self._captured

    @property
    def finished(self) -> bool:
        """True once the source is exhausted (or failed, or stop() was called) and no frame is
        pending: `get()` would return None (or raise the source's error) at once."""
        with self._cond:
            return self._ended and not self._frames

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Grabber":
        """Start the capture thread (once). Returns self."""
        if self._thread is not None:
            raise RuntimeError("Grabber.start() called twice")
        self._thread = threading.Thread(target=self._run, name=f"grabber:{self.source!r}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and join it (at most `timeout` seconds).

        Wakes the thread from back-pressure waits and pacing sleeps at once. A thread blocked
        inside `source.read()` (a stuck camera) is left to finish that read on its own (it is a
        daemon thread and closes the source itself when the read returns); stop() does not
        wait longer than `timeout` for it. Pending frames are discarded. Idempotent.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._frames.clear()
            self._cond.notify_all()

    def __enter__(self) -> "Grabber":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- consumer ---------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Frame | None:
        """The next frame (realtime: the newest one), waiting for it.

        Returns None when the source has finished and nothing is pending. Raises the source's
        exception if the thread failed (after the frames read before the failure). Raises
        CaptureTimeout (a CaptureError and a TimeoutError) when `timeout` seconds pass with no
        frame while the source is still running; timeout None waits indefinitely.
        """
        if self._thread is None:
            raise RuntimeError("Grabber.get() before start()")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._frames:
                    frame = self._frames.popleft()
                    self._delivered += 1
                    self._cond.notify_all()  # room for the reader (non-realtime)
                    return frame
                if self._error is not None:
                    raise self._error
                if self._ended:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise CaptureTimeout(f"no frame from {self.source!r} within {timeout} s "
                                         f"({self._delivered} delivered so far)")
                self._cond.wait(remaining)

    def held_frame(self) -> Frame:
        """An empty Frame for the loop to emit while the source delivers nothing (a stalled
        camera). It takes the next capture index, so indices stay unique and increasing."""
        with self._cond:
            index = self._next_index
            self._next_index += 1
        return Frame(index=index, t_capture=time.perf_counter())

    # -- producer (thread) ------------------------------------------------------------------
    def _run(self) -> None:
        paced = self.realtime and not getattr(self.source, "is_live", False)
        period = 1.0 / float(self.source.fps) if paced and self.source.fps > 0 else 0.0
        next_due: float | None = None
        try:
            while not self._stop.is_set():
                if period:
                    now = time.perf_counter()
                    if next_due is None or now - next_due > period:
                        next_due = now  # first frame, or more than a frame late: re-anchor
                    elif next_due > now and self._stop.wait(next_due - now):
                        break
                fields = self.source.read()
                t_capture = time.perf_counter()
                if fields is None:
                    break
                if period:
                    next_due += period
                with self._cond:
                    index = self._next_index
                    self._next_index += 1
                    self._captured += 1
                frame = Frame(index=index, t_capture=t_capture, **fields)
                if not self._put(frame):
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised from get()
            with self._cond:
                self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            if self._close_source:
                try:
                    self.source.close()
                except Exception as exc:  # noqa: BLE001
                    with self._cond:
                        if self._error is None:
                            self._error = exc

    def _put(self, frame: Frame) -> bool:
        """Hand a frame to the consumer; False when stopped while waiting for room."""
        with self._cond:
            if self.realtime:
                if self._frames:
                    self._frames.clear()
                    self._dropped += 1
            else:
                while len(self._frames) >= self._capacity:
                    if self._stop.is_set():
                        return False
                    self._cond.wait(0.1)
            if self._stop.is_set():
                return False
            self._frames.append(frame)
            self._cond.notify_all()
            return True
