"""Neutral calibration of the driver: who they are when they do nothing.

Collects canonical shapes (face frame of each tracked frame) over a short window and takes a
robust neutral from them: the per-landmark median over the frames where the mouth is closed
(the face and the head pose both), so a driver who talks or smiles during calibration still gets
a closed-mouth neutral. Closed means within `CLOSED_MARGIN` interoculars of the window's most
closed lips, from at least `MIN_CLOSED` frames: a talker's lips may meet in two frames of thirty
(d10), and the quarter least open that this took before parted the neutral by 0.06
interoculars, so every smaller opening of hers was drawn shut and every larger one 0.06 short
(live-calibrated self-drive, `bench --profile sdd10 --quality`: mouth offset −0.042 → +0.018,
width gain 0.74 → 0.86). The eyes (lids and irises) are not tied to the jaw and are
taken from the frames where both are open instead — each eye's gap at least `EYE_OPEN` of its
90th percentile over the window, which leaves blinks, winks and squints out — when there are
at least `MIN_EYE_FRAMES` of them (else they come from the closed-mouth frames as well): the
few frames a talking driver's mouth is closed are as likely to catch a squint or the start of a
blink, and a neutral eye narrower than the driver's usual one would draw the avatar's eyes
wider than its own at rest and read every ordinary eye as a widening (d10's closed-mouth frames:
right eye 0.107 interocular, its open frames' median 0.127). The first frame is never trusted
on its own: until the window is full the neutral is re-estimated from every frame seen so far.

The gaze (the irises) is a driver's neutral at rest only when they look at the camera, which
a first second need not show: d0 looks aside through his (0.145 eye widths, both eyes'
median), and every later look came out about 0.1 eye widths off (his irises read in the corner
when his looked a third of the way there, and short of where they looked the other way). So
the irises' sideways neutral goes on being refined from open-eyed frames for `GAZE_S` after the
window (their median keeps those glances a minority; moving at most `GAZE_RATE` a frame, so the
avatar's irises never jump when the median turns from one cluster of looks to another; up and
down stays the window's: refined too, it wandered with d11's looks and took her gaze_y r from
0.92 to 0.81), and the sideways gaze both eyes share is held within `GAZE_REST` eye widths of
the eye corners' midpoint, where a face looking at the camera has its irises (the six eval
drivers at rest: within 0.025; d0's first second: 0.145). The two eyes' difference (their
convergence) is the driver's own. Live-calibrated self-drive on d0 (`bench --profile sdd0
--driver ../shared/eval/drivers/d0.mp4 --quality`): gaze_x offset −0.040 → +0.008 eye widths,
r 0.90 → 0.99.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from realtime.face import geometry, topology

_EYES = np.array(topology.EYE_POINTS)
_IRISES = (np.array(topology.RIGHT_IRIS), np.array(topology.LEFT_IRIS))
EYE_OPEN = 0.75     # an eye is open when its gap is at least this much of its window's 90th percentile
MIN_EYE_FRAMES = 3  # with fewer open-eyed frames the eyes come from the closed-mouth frames too
GAZE_S = 5.0        # after the window, the irises' neutral is refined for this long (seconds)
GAZE_REST = 0.05    # |the shared sideways gaze| of the neutral, at most (eye widths)
GAZE_STEP = 0.002   # a refined iris neutral replaces the last when it moves this far (eye widths)
GAZE_RATE = 0.005   # ... and moves at most this far in one frame (eye widths)
CLOSED_MARGIN = 0.02  # a closed mouth: a lip gap at most this far above the window's smallest (interoculars)
MIN_CLOSED = 3        # ... from at least this many frames (the most closed ones, when fewer are)


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
    """Accumulates frames for `window_s` seconds of tracking, then freezes (but the irises'
    sideways neutral, refined for GAZE_S more: module docstring).

    `add(landmarks, t)` returns the current best Neutral (provisional until `done`).
    """

    def __init__(self, window_s: float = 1.0, closed_margin: float = CLOSED_MARGIN, max_frames: int = 90):
        self.window_s = window_s
        self.closed_margin = closed_margin
        self.max_frames = max_frames
        self.reset()

    def reset(self) -> None:
        self._shapes: list[np.ndarray] = []
        self._eye_gaps: list[tuple[float, float]] = []
        self._poses: list[geometry.Similarity] = []
        self._t0: float | None = None
        self.neutral: Neutral | None = None
        self.done = False
        self._gazes: list[np.ndarray] = []       # open-eyed frames' `gaze`, from `done` on
        self._open_gap: np.ndarray | None = None   # each eye's open threshold, fixed at `done`
        self._window_shape: np.ndarray | None = None   # the neutral's shape at `done`
        self._t_done: float | None = None

    def add(self, landmarks: np.ndarray, t: float) -> Neutral:
        if self._t0 is None:
            self._t0 = t
        if self.done:
            if self._open_gap is not None and t - self._t_done < GAZE_S:
                self._refine_gaze(landmarks)
            return self.neutral
        frame = geometry.face_frame(landmarks)
        self._shapes.append(frame.invert_points(np.asarray(landmarks, np.float64)))
        self._eye_gaps.append(geometry.eye_opening(self._shapes[-1]))
        self._poses.append(frame)
        self.neutral = self._estimate()
        if t - self._t0 >= self.window_s or len(self._shapes) >= self.max_frames:
            self.done = True
            eyes = np.asarray(self._eye_gaps)
            self._open_gap = EYE_OPEN * np.quantile(eyes, 0.9, axis=0)
            self._gazes = [gaze(s) for s, g in zip(self._shapes, eyes) if (g >= self._open_gap).all()]
            self._window_shape = self.neutral.shape
            self._t_done = t
        return self.neutral

    def pin(self, landmarks: np.ndarray) -> Neutral:
        """Freeze the neutral to this one face as it is (the bench's known reference: no gaze
        held, nothing refined later)."""
        self.reset()
        frame = geometry.face_frame(landmarks)
        self.neutral = Neutral(shape=frame.invert_points(np.asarray(landmarks, np.float64)),
                               rotation=frame.rotation, translation=frame.translation,
                               scale=float(frame.scale), frames=1)
        self.done = True
        return self.neutral

    def _refine_gaze(self, landmarks: np.ndarray) -> None:
        """One more frame for the irises' neutral (module docstring): each iris moved sideways
        (along its eye's corner axis only: where a look up or down rests is the window's) to the
        median of the open-eyed frames' so far, the shared sideways gaze held to GAZE_REST; the
        neutral moves towards that by at most GAZE_RATE a frame, and is replaced (a new object)
        only when an iris moves GAZE_STEP eye widths or more."""
        shape = geometry.face_frame(landmarks).invert_points(np.asarray(landmarks, np.float64)[: topology.N_LANDMARKS])
        if not (np.asarray(geometry.eye_opening(shape)) >= self._open_gap).all():
            return
        self._gazes.append(gaze(shape))
        target = self._window_shape.copy()
        _move_gaze(target, np.median(np.stack(self._gazes), axis=0) - gaze(target))
        _hold_gaze(target)
        step = np.clip(gaze(target) - gaze(self.neutral.shape), -GAZE_RATE, GAZE_RATE)
        if np.abs(step).max() >= GAZE_STEP:
            new = self.neutral.shape.copy()
            _move_gaze(new, step)
            self.neutral = dataclasses.replace(self.neutral, shape=new)

    def _estimate(self) -> Neutral:
        shapes = np.stack(self._shapes)
        gaps = np.array([geometry.mouth_opening(s) for s in shapes])
        # The most closed-mouth frames only, for the shape (but the eyes) and the pose: lips
        # alone from them on a jaw from the others would give closed lips on a dropped chin.
        # closed: near the window's most closed lips, not a share of the window (module doc)
        iod = np.array([geometry.interocular(s) for s in shapes])
        rel = gaps / np.maximum(iod, 1e-9)
        closed = np.flatnonzero(rel <= rel.min() + self.closed_margin)
        if len(closed) < MIN_CLOSED:
            closed = np.argsort(rel, kind="stable")[:MIN_CLOSED]
        poses = [self._poses[i] for i in closed]
        rotvecs = np.stack([geometry.rotvec_from_matrix(p.rotation) for p in poses])
        shape = np.median(shapes[closed], axis=0)
        eyes = np.asarray(self._eye_gaps)
        open_eyes = np.flatnonzero((eyes >= EYE_OPEN * np.quantile(eyes, 0.9, axis=0)).all(axis=1))
        if len(open_eyes) >= MIN_EYE_FRAMES:
            shape[_EYES] = np.median(shapes[open_eyes[:, None], _EYES], axis=0)
        _hold_gaze(shape)
        return Neutral(
            shape=shape,
            rotation=geometry.matrix_from_rotvec(np.median(rotvecs, axis=0)),
            translation=np.median(np.stack([p.translation for p in poses]), axis=0),
            scale=float(np.median([p.scale for p in poses])),
            frames=len(shapes),
        )


_IRIS_POINTS = np.concatenate(_IRISES)


def _eye_axes(shape: np.ndarray):
    """Per eye (right, left): (corners' midpoint (2,), unit axis (2,) to the subject's left,
    width) in the canonical x-y plane."""
    out = []
    for e, (outer, inner) in enumerate(topology.EYE_CORNERS):
        a, b = shape[outer, :2], shape[inner, :2]
        axis = b - a if e == 0 else a - b
        width = max(float(np.linalg.norm(axis)), 1e-9)
        out.append((0.5 * (a + b), axis / width, width))
    return out


def gaze(shape: np.ndarray) -> np.ndarray:
    """(2,) each iris centre's sideways place, right eye then left: along its eye's corner axis
    (+ towards the subject's left) from the corners' midpoint, in eye widths."""
    return np.array([(shape[iris[0], :2] - mid) @ u / width
                     for (mid, u, width), iris in zip(_eye_axes(shape), _IRISES)])


def _move_gaze(shape: np.ndarray, shift) -> None:
    """Move each iris of `shape` (in place) sideways by `shift` (right, left) eye widths."""
    for (_, u, width), iris, d in zip(_eye_axes(shape), _IRISES, np.broadcast_to(shift, (2,))):
        shape[iris, :2] += float(d) * width * u


def _hold_gaze(shape: np.ndarray) -> None:
    """Move both irises of `shape` (in place) sideways by the same share of their eye's width, so
    that their shared sideways gaze (the mean of `gaze`) is within GAZE_REST of 0."""
    shared = float(gaze(shape).mean())
    shift = float(np.clip(shared, -GAZE_REST, GAZE_REST)) - shared
    if shift != 0.0:
        _move_gaze(shape, shift)
