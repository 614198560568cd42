"""Track stage: MediaPipe Face Mesh → (478, 3) landmarks in pixel units.

Uses the legacy `mp.solutions.face_mesh` graph of mediapipe 0.10.21, whose models ship inside
the wheel (the Tasks API needs a model file downloaded at run time). x, y are pixels; z is
MediaPipe's relative depth scaled by the image width (smaller = nearer), so all three axes
share one unit.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types

import numpy as np

from realtime.core.errors import PuppeteerError
from realtime.core.quiet import quiet_native_stderr

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["Tracker", "TrackStage", "FaceBoxes", "find_face_boxes", "quiet_native_stderr"]


class TrackerUnavailable(PuppeteerError):
    """Tracking was asked for where mediapipe is not installed (numpy 2, a bare GPU machine)."""


class _PyplotOnFirstUse(types.ModuleType):
    """Stands in for matplotlib.pyplot in mediapipe's drawing helpers, which import it at load
    time and which the engine never calls: importing pyplot costs ~0.75 s of every start-up
    (2-core Xeon, 2.1 GHz). The real module is imported the first time anything is read."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module("matplotlib.pyplot"), name)


@contextlib.contextmanager
def _pyplot_deferred():
    """While mediapipe is imported, `import matplotlib.pyplot` gives a `_PyplotOnFirstUse`; it
    is taken out of sys.modules afterwards, so every later import gets the real pyplot."""
    if "matplotlib.pyplot" in sys.modules:
        yield
        return
    stand_in = _PyplotOnFirstUse("matplotlib.pyplot")
    sys.modules["matplotlib.pyplot"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("matplotlib.pyplot") is stand_in:
            del sys.modules["matplotlib.pyplot"]


def _mediapipe():
    """The mediapipe module, or TrackerUnavailable saying how to do without it."""
    try:
        with _pyplot_deferred():
            import mediapipe as mp  # noqa: PLC0415 - mediapipe: heavy, loaded only by code that tracks
    except ModuleNotFoundError as exc:
        if exc.name != "mediapipe":
            raise
        raise TrackerUnavailable(
            "tracking a face needs mediapipe (pip install mediapipe==0.10.21, which needs "
            "numpy<2); without it, drive with a tracked clip made where it is installed: "
            "run.py track CLIP --out CLIP.track.npz, then --driver CLIP.track.npz") from None
    return mp


def _to_array(face, width: int, height: int) -> np.ndarray:
    return np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark],
                    dtype=np.float32)


#: Calls kept quiet at most while no face has been found twice (descriptor 2 is silenced for the
#: whole process during each: not for ever over a faceless scene).
QUIET_CALLS = 60


class Tracker:
    """One MediaPipe Face Mesh graph. Not thread-safe: one per thread.

    static=False tracks across frames (fast: detection only when the track is lost);
    static=True detects on every call (enrollment, single images).
    """

    def __init__(self, static: bool = False, max_faces: int = 1,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        mp = _mediapipe()
        with quiet_native_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static, max_num_faces=max_faces, refine_landmarks=True,
                min_detection_confidence=min_detection_confidence,
                min_tracking_confidence=min_tracking_confidence)
            # The graph opens its models in its own threads, which print TFLite notices some
            # 20 ms after the constructor returns: a first (faceless) frame waits for them.
            self._mesh.process(np.full((32, 32, 3), 128, np.uint8))
        self._calls = self._found = 0

    def detect_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Landmarks of every face found (up to max_faces), RGB uint8 (H, W, 3) in."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"Tracker wants an RGB uint8 (H, W, 3) image, got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        # The first inferences print notices: the detector's on the first calls, the landmark
        # graph's ("landmark_projection_calculator") on the first call that finds a face, which
        # after faceless warm-up frames or an empty scene may be any later call.
        if self._calls < 2 or (self._found < 2 and self._calls < QUIET_CALLS):
            with quiet_native_stderr():
                result = self._mesh.process(np.ascontiguousarray(rgb))
        else:
            result = self._mesh.process(np.ascontiguousarray(rgb))
        self._calls += 1
        if not result.multi_face_landmarks:
            return []
        self._found += 1
        return [_to_array(f, w, h) for f in result.multi_face_landmarks]

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detect_all(rgb)
        return faces[0] if faces else None

    def lock_on(self, rgb: np.ndarray, box: tuple[float, float, float, float],
                grow: float = 1.6) -> np.ndarray | None:
        """Move a tracking (static=False) one-face tracker onto the face in `box` (x, y, w, h
        pixels of `rgb`) and return its landmarks, or None when no face is found there.

        The graph tracks the face it found first and looks for another only once it has lost it;
        so it is shown a blank (grey) frame (the track is dropped) and then `rgb` with everything
        outside `box`, grown `grow` times about its centre, greyed out (its detector finds only
        that face). The frames after it are tracked from that face on. Costs two calls."""
        h, w = rgb.shape[:2]
        grey = np.full_like(rgb, 128)
        self.detect_all(grey)
        x, y, bw, bh = box
        cx, cy = x + bw / 2.0, y + bh / 2.0
        half = 0.5 * grow * max(bw, bh)
        x0, x1 = int(max(0, np.floor(cx - half))), int(min(w, np.ceil(cx + half)))
        y0, y1 = int(max(0, np.floor(cy - half))), int(min(h, np.ceil(cy + half)))
        grey[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
        return self(grey)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FaceBoxes:
    """Every face's box (x, y, w, h pixels) in an RGB uint8 frame, from MediaPipe's face
    detector: short-range (the one Face Mesh runs when it looks for a face; ~2-3 ms a 512²
    frame on the 2-core CPU) or `full_range` (finds faces too small for Face Mesh's own detector:
    paintings, full-body shots). Reusable; not thread-safe."""

    def __init__(self, min_confidence: float = 0.5, full_range: bool = False):
        mp = _mediapipe()
        with quiet_native_stderr():
            self._det = mp.solutions.face_detection.FaceDetection(
                model_selection=int(full_range), min_detection_confidence=min_confidence)
        self._calls = 0

    def __call__(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        h, w = rgb.shape[:2]
        quiet = quiet_native_stderr() if self._calls < 2 else contextlib.nullcontext()
        with quiet:    # the first inferences print TFLite notices
            result = self._det.process(np.ascontiguousarray(rgb))
        self._calls += 1
        boxes = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append((b.xmin * w, b.ymin * h, b.width * w, b.height * h))
        return boxes

    def close(self) -> None:
        self._det.close()


def find_face_boxes(rgb: np.ndarray, min_confidence: float = 0.5) -> list[tuple[float, float, float, float]]:
    """Face boxes (x, y, w, h in pixels) from MediaPipe's full-range detector, once."""
    det = FaceBoxes(min_confidence, full_range=True)
    try:
        return det(rgb)
    finally:
        det.close()


class TrackStage:
    """Frame.image → Frame.landmarks (None when no face). Scripted frames pass through, and so
    do frames of a tracked clip (`frame.tracked`: their landmarks, or None, came with them), so
    playing one never loads mediapipe."""

    name = "track"

    def __init__(self, tracker: Tracker | None = None):
        self.tracker = tracker  # built on the first image (MediaPipe's graph takes ~0.1 s)

    def __call__(self, frame) -> None:
        if frame.state is not None or frame.image is None or frame.tracked:
            return
        if self.tracker is None:
            self.tracker = Tracker(static=False)
        frame.landmarks = self.tracker(frame.image)
