"""Neutral calibration of the driver: who they are when they do nothing.

Collects canonical shapes (face frame of each tracked frame) over a short window and takes a
robust neutral from them: the per-landmark median over the frames where the mouth is most
closed (the face and the head pose both), so a driver who talks or smiles during calibration
still gets a closed-mouth neutral. The eyes (lids and irises) are not tied to the jaw and are
taken from the frames where both are open instead — each eye's gap at least `EYE_OPEN` of its
90th percentile over the window, which leaves blinks, winks and squints out — when there are
at least `MIN_EYE_FRAMES` of them (else they come from the closed-mouth frames as well): the
few frames a talking driver's mouth is closed are as likely to catch a squint or the start of a
blink, and a neutral eye narrower than the driver's usual one would draw the avatar's eyes
wider than its own at rest and read every ordinary eye as a widening (d10's closed-mouth frames:
right eye 0.107 interocular, its open frames' median 0.127). The first frame is never trusted
on its own: until the window is full the neutral is re-estimated from every frame seen so far.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.face import geometry, topology

_EYES = np.array(topology.EYE_POINTS)
EYE_OPEN = 0.75     # an eye is open when its gap is at least this much of its window's 90th percentile
MIN_EYE_FRAMES = 3  # with fewer open-eyed frames the eyes come from the closed-mouth frames too


@dataclass
class Neutral:
    """A calibrated neutral: shape in canonical units and the head pose it was held in (the
    closed-mouth frames'; the eyes' points may come from other frames, see the module)."""

    shape: np.ndarray       # (478, 3) canonical
    rotation: np.ndarray    # (3, 3) face-frame rotation in camera axes
    translation: np.ndarray  # (3,) pixels
    scale: float            # pixels per canonical unit
    frames: int             # how many frames it was estimated from


class NeutralCalibrator:
    """Accumulates frames for `window_s` seconds of tracking, then freezes.

    `add(landmarks, t)` returns the current best Neutral (provisional until `done`).
    """

    def __init__(self, window_s: float = 1.0, mouth_quantile: float = 0.25, max_frames: int = 90):
        self.window_s = window_s
        self.mouth_quantile = mouth_quantile
        self.max_frames = max_frames
        self.reset()

    def reset(self) -> None:
        self._shapes: list[np.ndarray] = []
        self._eye_gaps: list[tuple[float, float]] = []
        self._poses: list[geometry.Similarity] = []
        self._t0: float | None = None
        self.neutral: Neutral | None = None
        self.done = False

    def add(self, landmarks: np.ndarray, t: float) -> Neutral:
        if self.done:
            return self.neutral
        if self._t0 is None:
            self._t0 = t
        frame = geometry.face_frame(landmarks)
        self._shapes.append(frame.invert_points(np.asarray(landmarks, np.float64)))
        self._eye_gaps.append(geometry.eye_opening(self._shapes[-1]))
        self._poses.append(frame)
        self.neutral = self._estimate()
        if t - self._t0 >= self.window_s or len(self._shapes) >= self.max_frames:
            self.done = True
        return self.neutral

    def _estimate(self) -> Neutral:
        shapes = np.stack(self._shapes)
        gaps = np.array([geometry.mouth_opening(s) for s in shapes])
        # The most closed-mouth frames only, for the shape (but the eyes) and the pose: lips
        # alone from them on a jaw from the others would give closed lips on a dropped chin.
        closed = np.flatnonzero(gaps <= np.quantile(gaps, self.mouth_quantile))
        poses = [self._poses[i] for i in closed]
        rotvecs = np.stack([geometry.rotvec_from_matrix(p.rotation) for p in poses])
        shape = np.median(shapes[closed], axis=0)
        eyes = np.asarray(self._eye_gaps)
        open_eyes = np.flatnonzero((eyes >= EYE_OPEN * np.quantile(eyes, 0.9, axis=0)).all(axis=1))
        if len(open_eyes) >= MIN_EYE_FRAMES:
            shape[_EYES] = np.median(shapes[open_eyes[:, None], _EYES], axis=0)
        return Neutral(
            shape=shape,
            rotation=geometry.matrix_from_rotvec(np.median(rotvecs, axis=0)),
            translation=np.median(np.stack([p.translation for p in poses]), axis=0),
            scale=float(np.median([p.scale for p in poses])),
            frames=len(shapes),
        )
