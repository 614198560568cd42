"""Tracked clips: a clip's landmarks saved once (`run.py track`), then played without MediaPipe.

`track_clip(source, clip, out)` runs the track stage over every frame of a clip exactly as the
loop does when that clip drives it offline (one `Tracker(static=False)`, first fed the blank
frame `Engine.warm_up` feeds it, then every frame in order) and writes `CLIP.track.npz`.
`TrackedClipSource` plays such a file through the same loop: every frame comes with its
landmarks (`Frame.tracked`), so the track stage passes it by and nothing imports mediapipe. With
the clip beside the file (same folder, the name it was tracked under, same sha256) the frames
carry the clip's images too; without it they carry landmarks and the share of each mouth that
shows teeth (`realtime.face.teeth`, read when it was tracked), which is all the avatar needs
(passthrough then shows nothing). A clip that is beside it but differs is refused.

File format (numpy .npz, read with allow_pickle=False):

    format      ()            int64     FORMAT (1)
    landmarks   (N, 478, 3)   float32   what the track stage gave, pixel units; zeros where no face
    present     (N,)          bool      a face was found in frame i
    fps         ()            float64   the clip's rate
    size        (2,)          int64     (width, height) of the frames tracked
    sha256      ()            str       of the clip file
    clip        ()            str       the clip's file name
    tracker     ()            str       what tracked it (mediapipe version, settings)
    teeth       (N,)          float32   frame i's teeth share (`teeth_share`); absent in files
                                        written before it: their frames read 0 without the clip
    upright     ()            bool      the frames were read upright (a phone's rotation tag
                                        applied); absent in files written before: such a file
                                        of a clip with a rotation tag is refused
"""
from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from realtime.core.frame import Frame
from realtime.core.paths import sha256_file, write_npz
from realtime.face.teeth import teeth_share
from realtime.face.topology import N_LANDMARKS
from realtime.face.track import Tracker, TrackStage, quiet_native_stderr
from realtime.io.source import CaptureError, Source

__all__ = ["FORMAT", "SUFFIX", "TrackError", "TrackedClip", "TrackedClipSource", "clip_beside", "default_track_path",
           "is_track_file", "track_clip", "track_frames"]

FORMAT = 1
SUFFIX = ".track.npz"
_KEYS = ("format", "landmarks", "present", "fps", "size", "sha256", "clip", "tracker")
MAX_COORD = 1e5     # pixels: landmarks of a face are within a few frame widths of the frame


class TrackError(CaptureError):
    """A tracked clip that cannot be read, or that does not belong to the clip beside it."""


def is_track_file(path: str | os.PathLike) -> bool:
    """True when `path` names a tracked clip (``*.track.npz``)."""
    return str(path).lower().endswith(SUFFIX)


def default_track_path(clip: str | os.PathLike) -> Path:
    """Where `run.py track CLIP` writes by default: ``CLIP-stem.track.npz`` beside the clip."""
    clip = Path(clip)
    return clip.with_name(clip.stem + SUFFIX)


def clip_beside(path: str | os.PathLike) -> Path:
    """The clip whose images a tracked clip plays when it lies beside it: the name it was tracked
    under, in the tracked clip's folder (whether or not it is there). Reads only the file's index
    and its `clip` entry (not the landmarks); TrackError, as `TrackedClip.load` says it, for a
    file that is missing or not a tracked clip."""
    path = Path(path)
    with _opened(path) as z:
        return path.parent / _clip_name(str(z["clip"]), path)


def _clip_name(clip: str, path: Path) -> str:
    """`clip` when it is a bare file name (the clip lies beside `path`); else TrackError: a name
    with a folder in it, or an absolute path, would send the engine to read (and hash) a file
    outside the tracked clip's folder."""
    if clip in ("", ".", "..") or any(c and c in clip for c in (os.sep, os.altsep, "\0")):
        raise TrackError(f"{path} is damaged: its clip name {clip[:80]!r} is not a bare file name; "
                         f"track the clip again (`run.py track CLIP`)")
    return clip


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """`path` opened with np.load (allow_pickle=False) as a tracked clip whose entries are all
    there; a missing, damaged or foreign file, and any read error inside the block, are
    TrackError saying what to do."""
    if not path.is_file():
        raise TrackError(f"tracked clip not found: {str(path)!r} (make one with "
                         f"`run.py track CLIP --out {path.name}`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _KEYS if k not in z.files]
            if missing:
                raise TrackError(f"{path} is not a tracked clip (no {', '.join(missing)}); "
                                 f"make one with `run.py track CLIP`")
            yield z
    except (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        raise TrackError(f"{path} is not a tracked clip this engine wrote, or it is damaged: "
                         f"track the clip again (`run.py track CLIP`)") from None
    except OSError as exc:
        raise TrackError(f"cannot read tracked clip {path}: {exc.strerror or exc}") from None


def _tracker_label() -> str:
    try:
        version = metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        version = "?"
    return f"mediapipe {version} face_mesh refine_landmarks static=False"


def track_frames(source: Source, progress: Callable[[int], Any] | None = None,
                 tracker: Tracker | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(landmarks (N, 478, 3) float32, present (N,) bool, teeth (N,) float32) of every frame of
    `source`, tracked as the loop tracks a clip offline: the engine's track stage, warmed up with
    the blank frame of `Engine.warm_up`, then each frame in order; teeth: `teeth_share` of each
    face (0 without one). `progress(1)` after each frame."""
    stage = TrackStage(tracker)
    with quiet_native_stderr():
        stage(Frame(index=-1, t_capture=0.0, image=np.zeros((64, 64, 3), np.uint8)))
    rows: list[np.ndarray | None] = []
    shares: list[float] = []
    try:
        while (fields := source.read()) is not None:
            frame = Frame(index=len(rows), t_capture=0.0, image=fields["image"])
            stage(frame)
            rows.append(frame.landmarks)
            shares.append(0.0 if frame.landmarks is None else teeth_share(frame.image, frame.landmarks))
            if progress is not None:
                progress(1)
    finally:
        if stage.tracker is not None and tracker is None:
            stage.tracker.close()
    landmarks = np.zeros((len(rows), N_LANDMARKS, 3), np.float32)
    present = np.zeros(len(rows), bool)
    for i, lm in enumerate(rows):
        if lm is not None:
            landmarks[i] = lm
            present[i] = True
    return landmarks, present, np.asarray(shares, np.float32)


def track_clip(source: Source, clip: str | os.PathLike, out: str | os.PathLike,
               progress: Callable[[int], Any] | None = None) -> TrackedClip:
    """Track every frame of `source` (opened on `clip`) and write `out` (atomically)."""
    clip = Path(clip)
    landmarks, present, teeth = track_frames(source, progress)
    if not len(landmarks):
        raise TrackError(f"{clip} gave no frame to track")
    tracked = TrackedClip(landmarks=landmarks, present=present, fps=float(source.fps),
                          size=(int(source.size[0]), int(source.size[1])),
                          sha256=sha256_file(clip), clip=clip.name, tracker=_tracker_label(), teeth=teeth)
    tracked.save(out)
    return tracked


@dataclass
class TrackedClip:
    """The contents of a ``.track.npz`` (see the module docstring)."""

    landmarks: np.ndarray
    present: np.ndarray
    fps: float
    size: tuple[int, int]
    sha256: str
    clip: str
    tracker: str = ""
    teeth: np.ndarray | None = None
    upright: bool = True

    def __len__(self) -> int:
        return len(self.present)

    def at(self, i: int) -> np.ndarray | None:
        """Frame i's landmarks (a fresh (478, 3) float32 array), or None without a face."""
        return self.landmarks[i].copy() if self.present[i] else None

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if not is_track_file(path):
            raise TrackError(f"a tracked clip's name ends in {SUFFIX}, got {str(path)!r}")
        if not path.parent.is_dir():
            raise TrackError(f"cannot write {path}: folder {path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                write_npz(f, dict(
                    format=np.int64(FORMAT), landmarks=self.landmarks.astype(np.float32),
                    present=self.present.astype(bool), fps=np.float64(self.fps),
                    size=np.asarray(self.size, np.int64), sha256=np.str_(self.sha256),
                    clip=np.str_(self.clip), tracker=np.str_(self.tracker), upright=np.bool_(self.upright),
                    **({} if self.teeth is None else {"teeth": np.asarray(self.teeth, np.float32)})),
                    compress=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrackedClip:
        path = Path(path)
        with _opened(path) as z:
            fmt = int(z["format"])
            if fmt != FORMAT:
                raise TrackError(f"{path} has tracked-clip format {fmt}, this version reads "
                                 f"{FORMAT}: track the clip again (`run.py track CLIP`)")
            out = cls(landmarks=np.asarray(z["landmarks"], np.float32),
                      present=np.asarray(z["present"], bool), fps=float(z["fps"]),
                      size=tuple(int(v) for v in z["size"]), sha256=str(z["sha256"]),
                      clip=str(z["clip"]), tracker=str(z["tracker"]),
                      teeth=np.asarray(z["teeth"], np.float32) if "teeth" in z.files else None,
                      upright=bool(z["upright"]) if "upright" in z.files else False)
        n = len(out.present)
        if out.landmarks.shape != (n, N_LANDMARKS, 3) or out.present.shape != (n,) or n == 0 or not out.fps > 0:
            raise TrackError(f"{path} is damaged: landmarks {out.landmarks.shape} for {n} frames "
                             f"at {out.fps} fps; track the clip again")
        faces = out.landmarks[out.present]      # frames without a face hold zeros, never read
        bad = ~np.all(np.isfinite(faces) & (np.abs(faces) <= MAX_COORD), axis=(1, 2))
        if bad.any():
            frame = int(np.flatnonzero(out.present)[np.argmax(bad)])
            raise TrackError(f"{path} is damaged: the landmarks of frame {frame} are not finite or "
                             f"beyond ±{MAX_COORD:g} px; track the clip again (`run.py track CLIP`)")
        _clip_name(out.clip, path)
        if out.teeth is not None and (out.teeth.shape != (n,) or not np.all(np.isfinite(out.teeth))):
            raise TrackError(f"{path} is damaged: teeth {out.teeth.shape} for {n} frames; track "
                             f"the clip again")
        return out


class TrackedClipSource:
    """A tracked clip as a frame source (the `Source` protocol, plus ``tracked = True``).

    Args:
        path: the ``.track.npz``.
        resize: must be None or the tracked size (the landmarks are in the tracked frames'
            pixels): a tracked clip plays at the size it was tracked at.
        fps: override for the nominal rate (default: the clip's).
        open_clip: how to open the clip's images (`realtime.io.capture.ClipSource`); None, or
            no clip beside the file: landmarks only.

    Raises TrackError for an unreadable file, a resize, or a clip beside it whose sha256 is not
    the one tracked.
    """

    is_live = False
    tracked = True

    def __init__(self, path: str | os.PathLike, resize: tuple[int, int] | None = None,
                 fps: float | None = None, open_clip: Callable[[Path], Source] | None = None):
        self.path = Path(path)
        self.track = TrackedClip.load(self.path)
        self.size = self.track.size
        if resize is not None and tuple(resize) != tuple(self.size):
            raise TrackError(f"{self.path.name} was tracked at {self.size[0]}x{self.size[1]} and "
                             f"plays at that size; drop the resize to {resize[0]}x{resize[1]} or "
                             f"track a resized clip")
        if fps is not None and not fps > 0:
            raise TrackError(f"fps must be positive, got {fps!r}")
        self.fps = float(fps) if fps is not None else self.track.fps
        self.frame_count: int | None = len(self.track)
        self.clip_path: Path | None = None
        self._images: Source | None = None
        beside = self.path.parent / self.track.clip
        if open_clip is not None and beside.is_file():
            digest = sha256_file(beside)
            if digest != self.track.sha256:
                raise TrackError(f"{beside} is not the clip {self.path.name} was tracked from "
                                 f"(sha256 {digest[:12]}…, tracked {self.track.sha256[:12]}…): "
                                 f"track it again, replacing the other clip's tracking in {self.path.name} "
                                 f"(`{self._retrack(beside)}`)")
            self._images = open_clip(beside)
            problem = None
            if tuple(self._images.size) != tuple(self.size):
                got = self._images.size
                problem = f"{beside.name} reads {got[0]}x{got[1]} but {self.path.name} was tracked at " \
                          f"{self.size[0]}x{self.size[1]}"
            elif not self.track.upright and (turn := getattr(self._images, "rotation", 0) % 360):
                problem = (f"{self.path.name} was tracked before clips were read upright, and "
                           f"{beside.name} is turned {turn}° by its rotation tag")
            if problem is not None:
                self._images.close()
                raise TrackError(f"{problem}: track it again, replacing {self.path.name} "
                                 f"(`{self._retrack(beside)}`)")
            self.clip_path = beside
        self._next = 0
        self._closed = False

    def _retrack(self, clip: Path) -> str:
        """The command that tracks `clip` again into this file (which exists: --force)."""
        out = "" if default_track_path(clip) == self.path else f" --out {shlex.quote(str(self.path))}"
        return f"run.py track {shlex.quote(str(clip))}{out} --force"

    @property
    def has_images(self) -> bool:
        """True when the frames carry the clip's images (the clip is beside the file)."""
        return self._images is not None

    def read(self) -> dict[str, Any] | None:
        """Frame i as {"landmarks": (478, 3) | None, "tracked": True[, "teeth": share][, "image":
        RGB]}, or None after the last one."""
        if self._closed or self._next >= len(self.track):
            return None
        fields: dict[str, Any] = {"landmarks": self.track.at(self._next), "tracked": True}
        if self.track.teeth is not None:
            fields["teeth"] = float(self.track.teeth[self._next])
        if self._images is not None:
            image = self._images.read()
            if image is None:   # the clip decoded fewer frames than were tracked
                return None
            fields["image"] = image["image"]
        self._next += 1
        return fields

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._images is not None:
                self._images.close()

    def __repr__(self) -> str:
        what = f"with {self.track.clip}" if self.has_images else "landmarks only"
        return f"TrackedClipSource({str(self.path)!r}, {len(self.track)} frames, {what}, fps={self.fps:g})"


def swap_without_frames(source) -> str | None:
    """Why `source` cannot drive a face swap, or None: a tracked clip whose video is not beside
    it carries landmarks only, and a swap draws onto the driver's own frames."""
    if not getattr(source, "tracked", False) or getattr(source, "has_images", True):
        return None
    track = getattr(source, "track", None)
    clip = track.clip if track is not None else "the clip"
    return (f"--mode swap draws onto the driver's own frames, and {source.path.name} carries "
            f"landmarks only: put {clip} beside it (or drive with the clip itself)")
