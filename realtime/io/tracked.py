"""Tracked clips: a clip's landmarks saved once (`run.py track`), then played without MediaPipe.

`track_clip(source, clip, out)` runs the track stage over every frame of a clip exactly as the
loop does when that clip drives it offline (one `Tracker(static=False)`, first fed the blank
frame `Engine.warm_up` feeds it, then every frame in order) and writes `CLIP.track.npz`.
`TrackedClipSource` plays such a file through the same loop: every frame comes with its
landmarks (`Frame.tracked`), so the track stage passes it by and nothing imports mediapipe. With
the clip beside the file (same folder, the name it was tracked under, same sha256) the frames
carry the clip's images too; without it they carry landmarks and the share of each mouth that
shows teeth and tongue (`realtime.face.teeth`, read when it was tracked), which is all the avatar needs
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
    tongue      (N,)          float32   frame i's tongue share (`tongue_share`); absent in files
                                        written before it: read from the clip's images when
                                        it is beside the file, else 0
    upright     ()            bool      the frames were read upright (a phone's rotation tag
                                        applied); absent in files written before: such a file
                                        of a clip with a rotation tag is refused

A tracked clip is a file someone may hand over, so nothing in it is trusted: before a member is
read, every member's .npy header (`realtime.core.npyheader`) is checked against the table above
(dtype, exact shape, 0-d scalars, C order, N in 1..`MAX_FRAMES`, strings at most `MAX_TEXT`
characters) and the bytes all members declare against `MAX_BYTES`, so a deflated file of a few
MB that declares gigabytes, or a header that lies about its shape, is one `TrackError` line
before anything is allocated; then the values: fps in `FPS_RANGE`, size in `MIN_SIDE`..
`MAX_VIDEO_SIDE` (and `MAX_VIDEO_PIXELS`), sha256 64 hex digits, the landmarks of every frame
with a face finite and within `MAX_COORD`, teeth and tongue in 0..1, the clip a bare file name.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
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
from realtime.core.npyheader import NpyHeader, member_header
from realtime.core.paths import out_of_space, sha256_file, write_npz
from realtime.face.teeth import mouth_shares
from realtime.face.topology import N_LANDMARKS
from realtime.face.track import Tracker, TrackStage, quiet_native_stderr
from realtime.io.media import MAX_VIDEO_PIXELS, MAX_VIDEO_SIDE
from realtime.io.source import CaptureError, Source

__all__ = ["FORMAT", "SUFFIX", "TrackError", "TrackedClip", "TrackedClipSource", "clip_beside", "default_track_path",
           "is_track_file", "track_clip", "track_frames"]

FORMAT = 1
SUFFIX = ".track.npz"
_KEYS = ("format", "landmarks", "present", "fps", "size", "sha256", "clip", "tracker")
MAX_COORD = 1e5     # pixels: landmarks of a face are within a few frame widths of the frame
MAX_FRAMES = 216_000            # an hour at 60 fps (its landmarks: 1.2 GB)
MAX_TEXT = 4096                 # characters of a string member (clip, tracker, sha256)
MAX_MEMBERS = 32
FPS_RANGE = (0.1, 1000.0)       # a time-lapse to a phone's slow motion
MIN_SIDE = 16                   # px: the smallest frame a tracked clip's size may name
#: what all members of a tracked clip may declare: the per-frame ones at MAX_FRAMES, and room
#: for the scalars and strings
MAX_BYTES = MAX_FRAMES * (N_LANDMARKS * 3 * 4 + 1 + 4 + 4) + (1 << 20)
# member -> (dtypes, shape): an int is a fixed size, "N" the frame count, "U" a str of at most
# MAX_TEXT characters
_MEMBERS: dict[str, tuple[tuple[str, ...], tuple[int | str, ...]]] = {
    "format": (("i4", "i8"), ()),
    "landmarks": (("f4",), ("N", N_LANDMARKS, 3)),
    "present": (("b1",), ("N",)),
    "fps": (("f4", "f8"), ()),
    "size": (("i4", "i8"), (2,)),
    "sha256": (("U",), ()),
    "clip": (("U",), ()),
    "tracker": (("U",), ()),
    "teeth": (("f4",), ("N",)),
    "tongue": (("f4",), ("N",)),
    "upright": (("b1",), ()),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        _check_headers(path)
        with np.load(path, allow_pickle=False) as z:
            yield z
    except (ValueError, TypeError, OverflowError, MemoryError, EOFError, KeyError, zipfile.BadZipFile,
            zlib.error, NotImplementedError):
        raise TrackError(f"{path} is not a tracked clip this engine wrote, or it is damaged: "
                         f"track the clip again (`run.py track CLIP`)") from None
    except OSError as exc:
        raise TrackError(f"cannot read tracked clip {path}: {exc.strerror or exc}") from None


def _check_headers(path: Path) -> None:
    """Every member's .npy header against `_MEMBERS` and the caps (the module docstring), read
    from the zip before np.load reads a byte of a member; TrackError says what is wrong."""
    def damaged(problem: str) -> TrackError:
        return TrackError(f"{path} is damaged: {problem}; track the clip again (`run.py track CLIP`)")

    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        if len(infos) > MAX_MEMBERS:
            raise damaged(f"it has {len(infos)} members (a tracked clip has {len(_MEMBERS)})")
        headers: dict[str, NpyHeader] = {}
        total = 0
        for info in infos:
            header = member_header(z, info, damaged)
            total += header.nbytes
            if total > MAX_BYTES:
                raise damaged(f"its arrays declare more than {MAX_BYTES >> 20} MiB (an hour at 60 fps "
                              f"is {MAX_FRAMES} frames)")
            headers[header.key] = header
    missing = [k for k in _KEYS if k not in headers]
    if missing:
        raise TrackError(f"{path} is not a tracked clip (no {', '.join(missing)}); "
                         f"make one with `run.py track CLIP`")
    landmarks = headers["landmarks"].shape
    n = landmarks[0] if len(landmarks) == 3 else 0      # a wrong ndim is refused below
    for key, (dtypes, pattern) in _MEMBERS.items():
        header = headers.get(key)
        if header is None:      # teeth, tongue, upright: absent in files written before them
            continue
        if dtypes == ("U",):
            ok = header.dtype.kind == "U" and header.dtype.itemsize <= 4 * MAX_TEXT
            want = f"a string of at most {MAX_TEXT} characters"
        else:
            ok = header.code in dtypes
            want = " or ".join(dtypes)
        if not ok:
            raise damaged(f"{key} has dtype {header.dtype}, expected {want}")
        if header.shape != tuple(n if p == "N" else p for p in pattern) or header.fortran_order:
            order = " in Fortran order" if header.fortran_order else ""
            frames = f" (N={n}, the frames of its landmarks)" if "N" in pattern and key != "landmarks" else ""
            raise damaged(f"{key} has shape {header.shape}{order}, expected {_shape(pattern)}{frames}")
        if key == "landmarks" and not 1 <= n <= MAX_FRAMES:
            raise damaged(f"it holds {n} frames (a tracked clip holds 1 to {MAX_FRAMES}, an hour at 60 fps)")


def _shape(pattern: tuple[int | str, ...]) -> str:
    """("N", 478, 3) -> "(N, 478, 3)"; ("N",) -> "(N,)"; () -> "()"."""
    return "(" + ", ".join(map(str, pattern)) + ("," if len(pattern) == 1 else "") + ")"


def _first_bad_face(landmarks: np.ndarray, present: np.ndarray, block: int = 4096) -> int | None:
    """The first frame with a face whose landmarks are not finite or beyond ±MAX_COORD, or None;
    frames without a face hold zeros that are never read. Block by block: an hour of frames is
    1.2 GB, which a copy of the faces would double."""
    for start in range(0, len(present), block):
        lm = landmarks[start:start + block]
        bad = present[start:start + block] & ~np.all(np.isfinite(lm) & (np.abs(lm) <= MAX_COORD), axis=(1, 2))
        if bad.any():
            return start + int(np.argmax(bad))
    return None


def _tracker_label() -> str:
    try:
        version = metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        version = "?"
    return f"mediapipe {version} face_mesh refine_landmarks static=False"


def track_frames(source: Source, progress: Callable[[int], Any] | None = None,
                 tracker: Tracker | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(landmarks (N, 478, 3) float32, present (N,) bool, teeth (N,) float32, tongue (N,) float32)
    of every frame of `source`, tracked as the loop tracks a clip offline: the engine's track
    stage, warmed up with the blank frame of `Engine.warm_up`, then each frame in order; teeth and
    tongue: `mouth_shares` of each face (0 without one). `progress(1)` after each frame."""
    stage = TrackStage(tracker)
    with quiet_native_stderr():
        stage(Frame(index=-1, t_capture=0.0, image=np.zeros((64, 64, 3), np.uint8)))
    rows: list[np.ndarray | None] = []
    shares: list[tuple[float, float]] = []
    try:
        while (fields := source.read()) is not None:
            frame = Frame(index=len(rows), t_capture=0.0, image=fields["image"])
            stage(frame)
            rows.append(frame.landmarks)
            shares.append((0.0, 0.0) if frame.landmarks is None else mouth_shares(frame.image, frame.landmarks))
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
    mouth = np.asarray(shares, np.float32).reshape(-1, 2)
    return landmarks, present, mouth[:, 0].copy(), mouth[:, 1].copy()


def track_clip(source: Source, clip: str | os.PathLike, out: str | os.PathLike,
               progress: Callable[[int], Any] | None = None) -> TrackedClip:
    """Track every frame of `source` (opened on `clip`) and write `out` (atomically)."""
    clip = Path(clip)
    landmarks, present, teeth, tongue = track_frames(source, progress)
    if not len(landmarks):
        raise TrackError(f"{clip} gave no frame to track")
    tracked = TrackedClip(landmarks=landmarks, present=present, fps=float(source.fps),
                          size=(int(source.size[0]), int(source.size[1])),
                          sha256=sha256_file(clip), clip=clip.name, tracker=_tracker_label(), teeth=teeth,
                          tongue=tongue)
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
    tongue: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.present)

    def at(self, i: int) -> np.ndarray | None:
        """Frame i's landmarks (a fresh (478, 3) float32 array), or None without a face."""
        return self.landmarks[i].copy() if self.present[i] else None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the clip to `path` (a ``.track.npz`` name) whole or not at all: through a
        temporary file beside it, renamed over it. TrackError for a name, a folder or a length it
        cannot hold, and for a write the system refuses (a full disk: no partial file is left)."""
        path = Path(path)
        if not is_track_file(path):
            raise TrackError(f"a tracked clip's name ends in {SUFFIX}, got {str(path)!r}")
        if not path.parent.is_dir():
            raise TrackError(f"cannot write {path}: folder {path.parent} does not exist")
        if len(self.present) > MAX_FRAMES:      # `load` would refuse it
            raise TrackError(f"cannot write {path}: {len(self.present)} frames, and a tracked clip holds at "
                             f"most {MAX_FRAMES} (an hour at 60 fps); track a shorter part of the clip")
        try:
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise TrackError(f"cannot write {path}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                write_npz(f, dict(
                    format=np.int64(FORMAT), landmarks=self.landmarks.astype(np.float32),
                    present=self.present.astype(bool), fps=np.float64(self.fps),
                    size=np.asarray(self.size, np.int64), sha256=np.str_(self.sha256),
                    clip=np.str_(self.clip), tracker=np.str_(self.tracker), upright=np.bool_(self.upright),
                    **({} if self.teeth is None else {"teeth": np.asarray(self.teeth, np.float32)}),
                    **({} if self.tongue is None else {"tongue": np.asarray(self.tongue, np.float32)})),
                    compress=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):    # a full disk, a quota: the system's word, not a bug
                raise TrackError(f"cannot write {path}: {exc.strerror or exc}"
                                 + (": free some space, or choose another file" if out_of_space(exc) else "")) from None
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
                      upright=bool(z["upright"]) if "upright" in z.files else False,
                      tongue=np.asarray(z["tongue"], np.float32) if "tongue" in z.files else None)
        n = len(out.present)
        if out.landmarks.shape != (n, N_LANDMARKS, 3) or out.present.shape != (n,) or not 1 <= n <= MAX_FRAMES:
            raise TrackError(f"{path} is damaged: landmarks {out.landmarks.shape} for {n} frames; "
                             f"track the clip again (`run.py track CLIP`)")
        if not (math.isfinite(out.fps) and FPS_RANGE[0] <= out.fps <= FPS_RANGE[1]):
            raise TrackError(f"{path} is damaged: its rate {out.fps:g} fps is outside {FPS_RANGE[0]:g}.."
                             f"{FPS_RANGE[1]:g}; track the clip again (`run.py track CLIP`)")
        w, h = out.size
        if not (MIN_SIDE <= w <= MAX_VIDEO_SIDE and MIN_SIDE <= h <= MAX_VIDEO_SIDE and w * h <= MAX_VIDEO_PIXELS):
            raise TrackError(f"{path} is damaged: its frame size {w}x{h} is not one a clip plays at "
                             f"({MIN_SIDE}..{MAX_VIDEO_SIDE} px a side, {MAX_VIDEO_PIXELS} px in all); track the "
                             f"clip again (`run.py track CLIP`)")
        if not _SHA256.fullmatch(out.sha256):
            raise TrackError(f"{path} is damaged: its sha256 is not 64 hex digits; track the clip again "
                             f"(`run.py track CLIP`)")
        frame = _first_bad_face(out.landmarks, out.present)
        if frame is not None:
            raise TrackError(f"{path} is damaged: the landmarks of frame {frame} are not finite or "
                             f"beyond ±{MAX_COORD:g} px; track the clip again (`run.py track CLIP`)")
        _clip_name(out.clip, path)
        for name, shares in (("teeth", out.teeth), ("tongue", out.tongue)):
            if shares is not None and shares.shape != (n,):
                raise TrackError(f"{path} is damaged: {name} {shares.shape} for {n} frames; track "
                                 f"the clip again")
            if shares is not None and not np.all(ok := (shares >= 0) & (shares <= 1)):
                frame = int(np.argmin(ok))
                raise TrackError(f"{path} is damaged: {name} of frame {frame} is {shares[frame]:g}, not a "
                                 f"share in 0..1; track the clip again (`run.py track CLIP`)")
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
        """Frame i as {"landmarks": (478, 3) | None, "tracked": True[, "teeth": share][, "tongue":
        share][, "image": RGB]}, or None after the last one."""
        if self._closed or self._next >= len(self.track):
            return None
        fields: dict[str, Any] = {"landmarks": self.track.at(self._next), "tracked": True}
        if self.track.teeth is not None:
            fields["teeth"] = float(self.track.teeth[self._next])
        if self.track.tongue is not None:
            fields["tongue"] = float(self.track.tongue[self._next])
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
