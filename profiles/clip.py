"""Reading a clip and pass 1 of video enrollment: track every frame and measure it (the query
point, sharpness, skin colour, the face count every few frames). See `profiles.enroll_video`."""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from profiles.enroll import (
    MAX_SIDE,
    EnrollError,
)
from realtime.core import paths
from realtime.core.quiet import quiet_native_stderr
from realtime.face import geometry, topology
from realtime.face.track import Tracker
from realtime.image.crop import square_crop
from realtime.io.capture import ended_early_note
from realtime.io.media import check_frame, open_video
from realtime.tiers.atlas.query import (
    query_from_landmarks,
)

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
SKIN_PATCHES = (50, 280, 151, 6, 199)  # right cheek, left cheek, forehead, nose bridge, chin


# ------------------------------------------------------------------------------- reading

def _open(path: Path) -> cv2.VideoCapture:
    """The clip, its frame size checked from the container before a frame is decoded."""
    if (problem := paths.not_a_file(path)) is not None:
        raise EnrollError(f"{path} {problem}")
    return open_video(path, EnrollError,
                      f"cannot open {path} as a video (supported: {', '.join(sorted(VIDEO_EXTS))})")


def read_frames(path: Path, start: int = 0, stop: int | None = None):
    """(index, RGB uint8) for frames [start, stop), longest side capped at MAX_SIDE."""
    cap = _open(path)
    try:
        i = 0
        while stop is None or i < stop:
            with quiet_native_stderr():     # FFmpeg's complaints about a damaged file ("overread 8")
                ok, bgr = cap.read()
            if i == 0 and ok and bgr is not None:
                check_frame(bgr, path, EnrollError)
            if not ok or bgr is None:
                break
            if i >= start:
                scale = MAX_SIDE / max(bgr.shape[:2])
                if scale < 1.0:
                    bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def frame_count(path: Path) -> int | None:
    """The frame count the clip's container announces (None where it announces none)."""
    cap = _open(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    return n if n > 0 else None


def progress_bar(total, desc, enabled):
    return tqdm(total=total, desc=desc, unit="frame", leave=False, disable=not enabled)


# ------------------------------------------------------------------------------- pass 1

@dataclass
class ClipTrack:
    """What pass 1 measures per frame (F frames; rows of untracked frames are NaN)."""

    frames: np.ndarray      # (F,) source frame indices
    landmarks: np.ndarray   # (F, 478, 3) float32 image pixels
    query: np.ndarray       # (F, 4)
    roll: np.ndarray        # (F,) degrees
    sharpness: np.ndarray   # (F,)
    colour: np.ndarray      # (F, 3) Lab mean of the skin patches
    faces: np.ndarray       # (F,) int8 faces found by the periodic check, −1 unchecked
    size: tuple[int, int]   # (width, height) after the MAX_SIDE cap
    fps: float


def face_box(lm: np.ndarray) -> tuple[float, float, float]:
    xy = lm[: topology.N_MESH, :2]
    lo, hi = xy.min(0), xy.max(0)
    c = (lo + hi) / 2.0
    return float(c[0]), float(c[1]), float(max(hi - lo))


def _sharpness(rgb: np.ndarray, lm: np.ndarray) -> float:
    cx, cy, side = face_box(lm)
    crop, _, _ = square_crop(rgb, cx, cy, side * 0.9, 96)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def _skin_colour(rgb: np.ndarray, lm: np.ndarray) -> np.ndarray:
    r = max(2, int(round(0.05 * geometry.interocular(lm))))
    h, w = rgb.shape[:2]
    vals = []
    for i in SKIN_PATCHES:
        x, y = int(round(lm[i, 0])), int(round(lm[i, 1]))
        patch = rgb[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
        if patch.size:
            vals.append(patch.reshape(-1, 3).mean(0))
    if not vals:
        return np.full(3, np.nan)
    mean = np.float32(np.mean(vals, 0) / 255.0).reshape(1, 1, 3)
    return cv2.cvtColor(mean, cv2.COLOR_RGB2Lab).reshape(3).astype(np.float64)


def _refuse_empty(path: Path, count: int | None, start: int, stop: int | None) -> None:
    """The EnrollError of a pass 1 that read no frame of [start, stop): a START past the end of
    the clip (of `count` frames, when its container says) names the clip's length."""
    if count is not None and start >= count:
        raise EnrollError(f"{path.name} has {count} frames (0..{count - 1}), so --frames "
                          f"{start}:{'' if stop is None else stop} starts past its end; pick "
                          f"START:STOP within 0:{count}")
    raise EnrollError(f"no frame could be decoded from {path.name}"
                      + (f" in frames {start}..{stop}" if start or stop else ""))


def _started_trackers(stack: contextlib.ExitStack) -> tuple[Tracker, Tracker]:
    """The clip's tracker and its face-counting checker (closed by `stack`), built and run on a
    blank frame in one block with the native stderr silenced, as the engine's warm-up: MediaPipe
    loads a graph's models in its own threads after the constructor returns, and they print
    then (absl's "WARNING: All log messages before absl::InitializeLog() ...", TFLite's
    notices) onto the user's terminal; a first frame waits for them. A blank frame has no face:
    the tracking starts afresh on the clip's first frame."""
    blank = np.zeros((64, 64, 3), np.uint8)
    with quiet_native_stderr():
        tracker = stack.enter_context(Tracker(static=False))
        checker = stack.enter_context(Tracker(static=True, max_faces=2, min_detection_confidence=0.7))
        for t in (tracker, checker):
            t.detect_all(blank)
    return tracker, checker


def track_clip(path: Path, start: int = 0, stop: int | None = None, progress: bool = True,
               multi_face_every: int = 15) -> ClipTrack:
    """Pass 1: track frames [start, stop) of the clip and measure each (see module doc)."""
    n = frame_count(path)
    total = None if n is None else max(0, min(n, stop if stop is not None else n) - start)
    rows = []
    size, fps = None, 30.0
    cap = _open(path)
    f = cap.get(cv2.CAP_PROP_FPS)
    fps = float(f) if f and np.isfinite(f) and f > 0 else 30.0
    cap.release()
    nan_lm = np.full((topology.N_LANDMARKS, 3), np.nan, np.float32)
    with contextlib.ExitStack() as stack:
        tracker, checker = _started_trackers(stack)
        bar = stack.enter_context(progress_bar(total, f"tracking {path.name}", progress))
        # Each graph prints a notice on its first face in a frame that is not square, which in a
        # clip whose face comes in late is past the tracker's own quiet calls (`QUIET_CALLS`):
        # its calls are quiet till then (a batch job: only the call's own output is lost).
        found = [False, False]
        for k, (i, rgb) in enumerate(read_frames(path, start, stop)):
            size = (rgb.shape[1], rgb.shape[0])
            with quiet_native_stderr() if not found[0] else contextlib.nullcontext():
                lm = tracker(rgb)
            found[0] = found[0] or lm is not None
            faces = -1
            if multi_face_every and k % multi_face_every == 0:
                with quiet_native_stderr() if not found[1] else contextlib.nullcontext():
                    faces = len(checker.detect_all(rgb))
                found[1] = found[1] or faces > 0
            if lm is None:
                rows.append((i, nan_lm, np.full(4, np.nan), np.nan, np.nan, np.full(3, np.nan), faces))
            else:
                fr = geometry.face_frame(lm)
                roll = geometry.euler_from_rotation(fr.rotation)[2]
                rows.append((i, lm, query_from_landmarks(lm), roll, _sharpness(rgb, lm),
                             _skin_colour(rgb, lm), faces))
            bar.update(1)
    if not rows:
        _refuse_empty(path, n, start, stop)
    got = rows[-1][0] + 1
    if stop is not None and got < stop:    # the clip ended first: say what was used
        print(f"note: {path.name} ends at frame {rows[-1][0]}, so --frames {start}:{stop} enrolls "
              f"frames {start}:{got}", file=sys.stderr)
    if (stop is None or got < stop) and (note := ended_early_note(path.name, got, n)):
        print(note, file=sys.stderr)        # a damaged file decodes up to the damage, then ends
    cols = list(zip(*rows))
    return ClipTrack(frames=np.array(cols[0], np.int64),
                     landmarks=np.stack(cols[1]).astype(np.float32),
                     query=np.stack(cols[2]).astype(np.float64),
                     roll=np.array(cols[3], np.float64),
                     sharpness=np.array(cols[4], np.float64),
                     colour=np.stack(cols[5]).astype(np.float64),
                     faces=np.array(cols[6], np.int8), size=size, fps=fps)
