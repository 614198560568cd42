"""Estimate stage: driver landmarks → FaceState (pose relative to neutral + expression).

Pose is a similarity fit of the current landmarks to the driver's neutral shape on the rigid
points; expression is what is left in the canonical frame after removing that rigid motion.
One-Euro filters smooth both. With no face the state eases to neutral within `ease_s` and
holds there; when the face comes back the filters restart and the state eases back in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.face import geometry, topology
from realtime.face.calibrate import NeutralCalibrator
from realtime.face.filters import OneEuroFilter
from realtime.face.state import FaceState

_RIGID = list(topology.RIGID)


@dataclass
class EstimatorConfig:
    calibration_s: float = 1.0
    ease_s: float = 0.25          # no face → neutral (and back) within this time
    pose_min_cutoff: float = 4.0  # Hz, on rotation vectors in degrees
    pose_beta: float = 0.2
    expr_min_cutoff: float = 2.0  # Hz, on canonical residuals
    expr_beta: float = 4.0
    eye_beta: float = 40.0        # expr_beta of the lids and irises: a blink (lids shut and open
    #                               within ~5 frames) passes instead of being smoothed away


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Estimator:
    """Stateful per-driver estimator. Call once per frame, in time order."""

    def __init__(self, config: EstimatorConfig | None = None):
        self.config = config or EstimatorConfig()
        self.calibrator = NeutralCalibrator(self.config.calibration_s)
        c = self.config
        self._f_rot = OneEuroFilter(c.pose_min_cutoff, c.pose_beta)
        self._f_trans = OneEuroFilter(c.pose_min_cutoff, c.pose_beta * 10)
        self._f_scale = OneEuroFilter(c.pose_min_cutoff, c.pose_beta)
        beta = np.full((topology.N_LANDMARKS, 1), c.expr_beta)
        beta[list(topology.EYE_POINTS)] = c.eye_beta
        self._f_expr = OneEuroFilter(c.expr_min_cutoff, beta)
        self._shown = FaceState.neutral(present=False)  # last state handed out
        self._ease_from: FaceState | None = None
        self._ease_t0: float | None = None
        self._lost = True

    @property
    def neutral(self):
        return self.calibrator.neutral

    def recalibrate(self) -> None:
        """Start a new neutral calibration from the next frames (hotkey `n`)."""
        self.calibrator.reset()
        self._reset_filters()

    def _reset_filters(self) -> None:
        for f in (self._f_rot, self._f_trans, self._f_scale, self._f_expr):
            f.reset()

    def measure(self, landmarks: np.ndarray, t: float) -> FaceState:
        """Unfiltered state of one tracked frame (updates calibration while it runs)."""
        lm = np.asarray(landmarks, np.float64)
        neutral = self.calibrator.add(lm, t)
        fit = geometry.umeyama(neutral.shape[_RIGID], lm[_RIGID])
        rel = fit.rotation @ neutral.rotation.T
        return FaceState(
            rotation=rel,
            translation=(fit.translation - neutral.translation) / neutral.scale,
            scale=fit.scale / neutral.scale,
            expression=fit.invert_points(lm) - neutral.shape,
        )

    def __call__(self, landmarks: np.ndarray | None, t: float) -> FaceState:
        """Filtered state for the frame at time `t` (seconds); `landmarks` None = no face."""
        if landmarks is None:
            if not self._lost:
                self._lost = True
                self._start_ease(t)
                self._reset_filters()
            target = FaceState.neutral(present=False)
        else:
            raw = self.measure(landmarks, t)
            target = self._filter(raw, t)
            if self._lost:
                self._lost = False
                self._start_ease(t)
        self._shown = self._eased(target, t)
        self._shown.present = target.present  # easing blends the pose, not the tracking status
        return self._shown

    def _filter(self, raw: FaceState, t: float) -> FaceState:
        rv = self._f_rot(np.degrees(geometry.rotvec_from_matrix(raw.rotation)), t)
        return FaceState(
            rotation=geometry.matrix_from_rotvec(np.radians(rv)),
            translation=self._f_trans(raw.translation, t),
            scale=float(self._f_scale(np.array([raw.scale]), t)[0]),
            expression=self._f_expr(raw.expression, t),
            present=True,
        )

    def _start_ease(self, t: float) -> None:
        self._ease_from = self._shown
        self._ease_t0 = t

    def _eased(self, target: FaceState, t: float) -> FaceState:
        if self._ease_from is None:
            return target
        w = _smoothstep((t - self._ease_t0) / self.config.ease_s)
        if w >= 1.0:
            self._ease_from = None
            return target
        return self._ease_from.blend(target, w)


class EstimateStage:
    """Frame.landmarks → Frame.state. Scripted frames (state already set) pass through.

    `clock(frame)` gives the time the filters see: the capture time live, the media time
    (index / fps) when a file is processed offline, so results do not depend on CPU speed.
    """

    name = "estimate"

    def __init__(self, estimator: Estimator, clock):
        self.estimator = estimator
        self.clock = clock

    def __call__(self, frame) -> None:
        if frame.state is None:
            frame.state = self.estimator(frame.landmarks, self.clock(frame))
