"""Capture: the frame sources (camera, clip, folder of images) and `open_source(spec)`.

Every source implements the `Source` protocol (realtime.io.source: fps, size, is_live,
frame_count, read() -> dict | None, close()). Images are RGB uint8 (H, W, 3): sources convert
from OpenCV's BGR once, here. An optional `resize=(w, h)` is applied once per frame with
cv2.INTER_AREA (an image folder's pictures are fitted into it with their aspect ratio kept).

The thread that reads a source and hands out `Frame` records is `realtime.io.grabber.Grabber`;
this module re-exports it (and `CaptureTimeout`) for callers that still import them from here.
"""
from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

try:                                   # OpenCV 4
    from cv2 import getLogLevel, setLogLevel
except ImportError:                    # OpenCV 5 moved them
    from cv2.utils.logging import getLogLevel, setLogLevel

from realtime.core import paths
from realtime.core.letterbox import letterbox
from realtime.core.paths import IMAGE_SUFFIXES
from realtime.core.quiet import quiet_native_stderr
from realtime.core.text import count, ended_early_note
from realtime.io.grabber import Grabber
from realtime.io.media import check_frame, open_video, read_image
from realtime.io.source import CaptureError, CaptureTimeout, Source
from realtime.io.tracked import TrackedClipSource, clip_beside, is_track_file

__all__ = ["CameraSource", "CaptureError", "CaptureTimeout", "ClipSource", "DEFAULT_CLIP_FPS",
           "Grabber", "ImageDirSource", "Source", "TrackedClipSource",
           "ended_early_note", "image_files", "input_paths", "open_source", "quiet_opencv"]

DEFAULT_CLIP_FPS = 30.0
#: sound files, said as such (OpenCV only says it cannot read them as a video)
AUDIO_SUFFIXES = frozenset({".m4a", ".mp3", ".wav", ".aac", ".flac", ".ogg", ".opus", ".wma"})
#: failed reads in a row that a clip whose header announces more frames may have at a damaged
#: spot before it counts as ended (`ClipSource.read`): OpenCV fails on each frame of the damage
#: and then decodes on (20 KB of noise in the middle of a 90-frame clip: 13 frames failed, 41 came
#: after them, which the first failure used to end the run before)
MAX_DAMAGED_RUN = 90
#: a clip whose frames are more than VFR_SHARE of the time off its nominal rate by more than
#: VFR_TOLERANCE of a frame's period has a variable frame rate (`ClipSource.varying_rate`)
VFR_TOLERANCE, VFR_SHARE = 0.25, 0.1


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log output (e.g. "can't open camera by index") inside the block.

    The previous log level is restored on exit.
    """
    previous = getLogLevel()
    setLogLevel(0)  # LOG_LEVEL_SILENT
    try:
        yield
    finally:
        setLogLevel(previous)


def _check_resize(resize: tuple[int, int] | None) -> tuple[int, int] | None:
    if resize is None:
        return None
    w, h = (int(v) for v in resize)
    if w <= 0 or h <= 0:
        raise CaptureError(f"resize must be a positive (width, height), got {resize!r}")
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
            node = f"/dev/video{self.index}"
            if sys.platform.startswith("linux") and not os.path.exists(node):
                raise CaptureError(f"cannot open camera {self.index}: {node} does not exist (no webcam is "
                                   f"connected, or its driver is not loaded); `python run.py devices` shows "
                                   f"the cameras found")
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
        if os.path.isdir(self.path):     # (never raises, unlike Path.is_dir on an overlong name)
            raise CaptureError(f"{str(self.path)!r} is a folder; name a video file inside it")
        picture = self.path.suffix.lower() in IMAGE_SUFFIXES    # a still image plays as one frame
        if self.path.suffix.lower() in AUDIO_SUFFIXES and paths.is_file(self.path):
            raise CaptureError(f"{str(self.path)!r} is a sound file ({self.path.suffix}), with no pictures: a "
                               f"driver is a camera, a video file or a folder of pictures")
        if not paths.is_file(self.path):
            if paths.exists(self.path):          # a pipe, a device or a socket
                raise CaptureError(f"{str(self.path)!r} {paths.not_a_file(self.path)}: name a "
                                   f"{'picture' if picture else 'video'} file")
            raise CaptureError(f"{'image' if picture else 'video file'} not found: {str(self.path)!r}")
        with quiet_opencv():
            cap = open_video(self.path, CaptureError,
                             f"cannot open image {str(self.path)!r}: OpenCV does not read it as a "
                             f"picture; check the file is a complete {self.path.suffix} image" if picture else
                             f"cannot open video file {str(self.path)!r}: OpenCV (FFmpeg) does "
                             f"not recognise it as a video; check the file is complete and in a "
                             f"common format (mp4/H.264, webm, avi)")
            with quiet_native_stderr():
                ok, first = cap.read()
        if ok and picture:   # as enroll and image folders read it: turned by EXIF, transparency over white
            try:
                first = read_image(self.path, CaptureError, f"cannot decode image {str(self.path)!r}", whole=True)
            except CaptureError:
                cap.release()
                raise
        if not ok or first is None:
            cap.release()
            raise CaptureError(f"cannot decode image {str(self.path)!r}: it is empty, truncated or not "
                               f"a {self.path.suffix} picture" if picture else
                               f"cannot decode any frame of video file {str(self.path)!r}: it "
                               f"may be empty, truncated or use a codec OpenCV lacks")
        try:
            check_frame(first, self.path, CaptureError)
        except CaptureError:
            cap.release()
            raise
        self._cap = cap
        self._resize = _check_resize(resize)
        self._pending: collections.deque[np.ndarray] = collections.deque([first])   # decoded, not yet read
        self._last = first
        self._damaged: list[tuple[int, int]] = []   # (at frame, how many) the decoder failed on and went on
        h, w = first.shape[:2]
        self.size = self._resize or (w, h)
        file_fps = cap.get(cv2.CAP_PROP_FPS)
        #: the file's own nominal rate (its average, for a variable-rate clip)
        self.file_fps = float(file_fps) if file_fps and np.isfinite(file_fps) and file_fps > 0 else DEFAULT_CLIP_FPS
        self.fps = float(fps) if fps is not None else self.file_fps
        # `fps` given (--fps): the clip plays at that rate, its own frame times aside
        self._own_times = fps is None
        n = 1 if picture else int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)   # (a PNG's: -2^63)
        self.frame_count: int | None = n if n > 0 else None
        #: the turn (degrees) the file's rotation tag asks for, which the frames come with
        self.rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        self._closed = False
        self._read = 0                   # frames decoded so far
        self._ended_at: int | None = None  # how many there were when the stream ended
        # each decoded frame's time in the file (s): a phone's clip may vary its frame rate
        self._media_t: float | None = self._position()
        self.media_time: float | None = None   # the time of the frame `read` gave last (None: not known,
        self._t_last: float | None = None      # or --fps given); and the decoder's, for the statistics
        self._steps = [0, 0, np.inf, 0.0]      # intervals seen, those off the nominal rate, min, max (s)

    def read(self) -> dict[str, Any] | None:
        """Next frame as {"image": RGB uint8}, or None at the end of the file. Frames the decoder
        fails on at a damaged spot, where it decodes on after them, are the frame before them
        again, in their place (the clip keeps its timing); `ended_early` says so."""
        if self._closed:
            return None
        if self._pending:
            bgr = self._pending.popleft()
            self._t_last, self._media_t = self._media_t, None    # the first frame's; a stand-in's: none
            self.media_time = self._t_last if self._own_times else None
        else:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                bgr = self._across_damage()
                if bgr is None:
                    self._ended_at = self._read
                    return None
                self.media_time = self._t_last = None
            else:
                self._timed(self._position())
        self._read += 1
        self._last = bgr
        return {"image": _to_rgb(bgr, self._resize)}

    def _position(self) -> float | None:
        t = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        return float(t) / 1000.0 if t is not None and np.isfinite(t) and t >= 0 else None

    def _timed(self, t: float | None) -> None:
        """`media_time` for a frame the decoder gave at `t`, and the interval statistics."""
        before, self._t_last = self._t_last, t
        self.media_time = t if self._own_times else None
        if t is None or before is None or not t > before:
            return
        step, nominal = t - before, 1.0 / self.file_fps
        seen = self._steps
        seen[0] += 1
        seen[1] += abs(step - nominal) > VFR_TOLERANCE * nominal
        seen[2], seen[3] = min(seen[2], step), max(seen[3], step)

    def varying_rate(self) -> tuple[float, float] | None:
        """(shortest, longest) interval (s) between the frames read so far when more than
        VFR_SHARE of them are off the nominal rate by over VFR_TOLERANCE (a variable-frame-rate
        clip: `file_fps` is only its average); None for a constant rate or too few frames. The
        frames' own times are compared with the file's rate, whatever `fps` the clip plays at."""
        n, off, lo, hi = self._steps
        return (lo, hi) if n >= 10 and off > VFR_SHARE * n else None

    def _across_damage(self) -> np.ndarray | None:
        """After a failed read: the next frame read, when the decoder goes on within
        MAX_DAMAGED_RUN failed reads and the header announces frames beyond them (the failed ones
        queued as the last frame again before it); None at the end (or with no frame count)."""
        if self.frame_count is None:
            return None
        failed = 1
        while failed < MAX_DAMAGED_RUN and self._read + failed < self.frame_count:
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                self._damaged.append((self._read, failed))
                self._pending.extend([self._last] * (failed - 1) + [bgr])
                return self._last
            failed += 1
        return None

    def ended_early(self) -> str | None:
        """A note when the stream ended well before the frame count the file's header announces
        (a truncated or corrupt file: the decoder stops at the damage as at an end, without an
        error), and when frames were left out at a damaged spot it decoded on after (`read`);
        None when neither: it ended near that count, has not ended (a run stopped by --frames),
        or the header announces none."""
        notes = []
        if self._damaged:
            lost = sum(n for _, n in self._damaged)
            where = ", ".join(f"{at}" for at, _ in self._damaged[:5]) + (", ..." if len(self._damaged) > 5 else "")
            notes.append(f"note: {self.path.name} has {count(lost, 'frame')} the decoder could not read (at frame "
                         f"{where}): the frame before {'it stands in its' if lost == 1 else 'them stands in their'} "
                         f"place, so the clip keeps its timing")
        if (early := ended_early_note(self.path.name, self._ended_at, self.frame_count)) is not None:
            notes.append(early)
        return "\n".join(notes) or None

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
    the first image, or `resize` when given; an image of another size is fitted inside it with
    its aspect ratio kept, on black borders (`letterbox`), never stretched.

    Raises CaptureError when the folder does not exist or holds no image; `read()` raises
    CaptureError naming a file OpenCV cannot decode and returns None after the last image.
    """

    is_live = False

    def __init__(self, path: str | os.PathLike, fps: float = 30.0,
                 resize: tuple[int, int] | None = None):
        self.path = Path(path)
        if not paths.is_dir(self.path):
            raise CaptureError(f"image folder not found: {str(self.path)!r}")
        self._files = image_files(self.path)
        if not self._files:
            raise CaptureError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder "
                               f"{str(self.path)!r}")
        if fps is None or not fps > 0:
            raise CaptureError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps)
        self.frame_count: int | None = len(self._files)
        first = self._load(self._files[0])
        self._resize = _check_resize(resize) or (first.shape[1], first.shape[0])
        self.size = self._resize
        self._next = 0

    def _load(self, file: Path) -> np.ndarray:
        return read_image(file, CaptureError, f"cannot decode image {str(file)!r} in the folder: it is "
                                              f"empty, truncated or not a {file.suffix} picture (move it out "
                                              f"of the folder or replace it)")

    def read(self) -> dict[str, Any] | None:
        """Next image as {"image": RGB uint8}, or None after the last one."""
        if self._next >= len(self._files):
            return None
        file = self._files[self._next]
        self._next += 1
        image = _to_rgb(self._load(file), None)
        if (image.shape[1], image.shape[0]) != self._resize:
            image = letterbox(image, self._resize)
        return {"image": image}

    def close(self) -> None:
        self._next = len(self._files)

    def __repr__(self) -> str:
        return f"ImageDirSource({str(self.path)!r}, {len(self._files)} images, fps={self.fps:g})"


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The images an `ImageDirSource` on `folder` reads, in the order it reads them: its direct
    children that are files with an extension of `IMAGE_SUFFIXES` (any case), in natural name
    order."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


def _classify(spec: str) -> tuple[str, Any]:
    """What `open_source` opens for `spec`: ("camera", index), ("folder", path),
    ("tracked", path), ("file", path) or ("none", path)."""
    text = str(spec).strip()
    device = re.fullmatch(r"(?:/dev/video)?(\d+)", text)
    if device is None and text:        # /dev/v4l/by-id/..., or any link to /dev/videoN
        device = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(os.path.expanduser(text)))
    if device:
        return "camera", int(device.group(1))
    path = Path(text).expanduser()
    if paths.is_dir(path):
        return "folder", path
    if is_track_file(path):
        return "tracked", path
    return ("file" if paths.is_file(path) else "none"), path


def is_camera(spec: str) -> bool:
    """Whether `open_source` opens `spec` as a camera (a live source: played in real time)."""
    return _classify(spec)[0] == "camera"


def input_paths(spec: str, role: str = "the driver") -> list[tuple[Path, str]]:
    """The files a source opened from `spec` (as `open_source` opens it) reads, each with what it
    is to the run (`role`, e.g. "the driver"): none for a camera or a spec that names no file;
    every image an image folder's source reads (`image_files`: a video written into the folder
    is never one of them); a tracked clip and the clip beside it whose images it plays (when
    that clip is there); a clip. Opens nothing but a tracked clip's small index (`clip_beside`:
    TrackError when it is not a tracked clip)."""
    kind, path = _classify(spec)
    if kind == "folder":
        try:
            return [(image, f"one of {role}'s images") for image in image_files(path)]
        except OSError:           # an unreadable folder: ImageDirSource says so when it opens
            return []
    if kind == "tracked" and paths.is_file(path):
        beside = clip_beside(path)
        return [(path, role)] + ([(beside, f"the clip {role} plays its images from")]
                                 if paths.is_file(beside) else [])
    return [(path, role)] if kind == "file" else []


def open_source(spec: str, size: tuple[int, int] | None = None,
                fps: float | None = None) -> Source:
    """Open a source from a command-line spec.

    - "0", "1", ... (or "/dev/videoN", or a link to it such as /dev/v4l/by-id/...) ->
      CameraSource(N, size=size, fps=fps): `size` is the
      requested capture size, `fps` the requested rate. A digit string is always a camera,
      even if a file of that name exists.
    - an existing directory -> ImageDirSource(spec, fps=fps or 30, resize=size)
    - a tracked clip (*.track.npz, `realtime.io.tracked`) -> TrackedClipSource: landmarks with
      every frame, and the clip's images when the clip is beside it
    - an existing file      -> ClipSource(spec, resize=size, fps=fps) (fps None = the file's rate)
    - a network address (``scheme://...``) -> CaptureError("... is a network address ...")
    - a path that does not exist (a suffix or a folder in it) -> CaptureError("... does not
      exist: check the path")
    - anything else         -> CaptureError("... is neither a camera index, a video file nor a
      folder of images")
    """
    kind, where = _classify(spec)
    if kind == "camera":
        return CameraSource(where, size=size, fps=fps)
    if kind == "folder":
        return ImageDirSource(where, fps=fps or 30.0, resize=size)
    if kind == "tracked":
        return TrackedClipSource(where, resize=size, fps=fps, open_clip=ClipSource)
    if kind == "file":
        return ClipSource(where, resize=size, fps=fps)
    if paths.exists(where):          # a pipe, a device or a socket
        raise CaptureError(f"{spec!r} {paths.not_a_file(where)}: name a camera index, a video file or a "
                           f"folder of images")
    if str(spec).lower().startswith("file://"):
        raise CaptureError(f"{spec!r} is a file:// address: give the file's path itself")
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", str(spec)):     # http://, rtsp://, ...
        raise CaptureError(f"{spec!r} is a network address: this takes a camera, a video file or a folder of "
                           f"images on this machine (download the clip first)")
    if where.suffix or any(sep in str(spec) for sep in "/" + os.sep):   # meant as a path
        raise CaptureError(f"{spec!r} does not exist: check the path")
    raise CaptureError(f"{spec!r} is neither a camera index, a video file nor a folder of images")
