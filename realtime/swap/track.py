"""The swap's track stage: the landmarks of the frame's largest face (the others stay as they are).

A one-face MediaPipe tracker follows the face from frame to frame; its detector runs only when
it has lost the face. (A two-face graph runs its detector on every frame in which it follows
fewer than two faces — the usual case, one person — which costs ~2.7 ms more a 512² frame on the
2-core CPU, a third of the tracking.) The other faces are looked for by MediaPipe's face
detector alone (`FaceBoxes`, ~2-3 ms), on the frame a face is found and then every
`check_every` frames: when a face larger than the followed one by `margin` (in area) shows
elsewhere, the tracker is moved onto it (`Tracker.lock_on`). So a larger face that walks in is
taken within `check_every` frames, and two faces of about the same size do not take turns.
"""
from __future__ import annotations

import numpy as np

from realtime.core.frame import Frame
from realtime.face.track import FaceBoxes, Tracker

__all__ = ["LargestFaceTrackStage", "larger_face", "landmark_box", "CHECK_EVERY", "MARGIN"]

#: frames between two looks for a larger face (1 s at 30 fps; on ~3 % of the frames, so the
#: detector's few ms stay out of the latency's 95th percentile)
CHECK_EVERY = 30
#: how much larger (area) another face must be to take over
MARGIN = 1.2

Box = tuple[float, float, float, float]   # x, y, w, h pixels


def landmark_box(landmarks: np.ndarray) -> Box:
    """(x, y, w, h) of the landmarks' x, y extent."""
    xy = np.asarray(landmarks)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def larger_face(boxes: list[Box], landmarks: np.ndarray, margin: float = MARGIN) -> Box | None:
    """The detector box of a face larger than the followed one (`landmarks`) by `margin` in area,
    or None. The followed face's own box is the largest box whose centre lies inside its landmark
    box; when the detector missed it nothing is compared (None)."""
    x, y, w, h = landmark_box(landmarks)

    def followed(b: Box) -> bool:
        cx, cy = b[0] + b[2] / 2.0, b[1] + b[3] / 2.0
        return x <= cx <= x + w and y <= cy <= y + h

    own = [b[2] * b[3] for b in boxes if followed(b)]
    others = [b for b in boxes if not followed(b)]
    if not own or not others:
        return None
    best = max(others, key=lambda b: b[2] * b[3])
    return best if best[2] * best[3] > margin * max(own) else None


class LargestFaceTrackStage:
    """Frame.image → Frame.landmarks of the largest face (None when none); see the module
    docstring. `tracker`: a one-face tracking `Tracker` (or any callable rgb → landmarks | None
    with `lock_on(rgb, box)`); `detector`: rgb → face boxes (default `FaceBoxes`). Both are
    built on the first image. Frames of a tracked clip (`frame.tracked`) pass through with the
    landmarks they came with (`run.py track` kept the one face it followed)."""

    name = "track"

    def __init__(self, tracker=None, detector=None, check_every: int = CHECK_EVERY, margin: float = MARGIN):
        self.tracker, self.detector = tracker, detector
        self.check_every, self.margin = int(check_every), float(margin)
        self._since: int | None = None    # frames since the last look; None: no face followed
        self.switches = 0                 # times the tracker was moved onto a larger face

    def __call__(self, frame: Frame) -> None:
        if frame.state is not None or frame.image is None or frame.tracked:
            return
        if self.tracker is None:
            self.tracker = Tracker(static=False)
        landmarks = self.tracker(frame.image)
        if landmarks is None:
            self._since = None
        elif self._since is None or self._since + 1 >= self.check_every:
            landmarks = self._look(frame.image, landmarks)
            self._since = 0
        else:
            self._since += 1
        frame.landmarks = landmarks

    def _look(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        if self.detector is None:
            self.detector = FaceBoxes()
        target = larger_face(self.detector(rgb), landmarks, self.margin)
        if target is None:
            return landmarks
        self.switches += 1
        return self.tracker.lock_on(rgb, target)

    def close(self) -> None:
        for part in (self.tracker, self.detector):
            close = getattr(part, "close", None)
            if callable(close):
                close()
