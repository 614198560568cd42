"""Estimate stage: driver landmarks → FaceState (pose relative to neutral + expression).

Pose is a similarity fit of the current landmarks to the driver's neutral shape on the rigid
points; expression is what is left in the canonical frame after removing that rigid motion.
One-Euro filters smooth both. With no face the state eases to neutral within `ease_s` and
holds there; when the face comes back the filters restart and the state eases back in.

The mouth and the brows: a point's own speed is a poor guide to whether it moves (at speech
rate a lip point's smoothed, signed speed averages out, and the filter lags ~17% of the lip
gap away), so the lower face and the forehead are filtered with a cutoff driven by the speed
of a few features that average many points — the lip gap and the mouth's widths, the brows'
heights — which move when the face does and hardly with tracking noise. At rest those points
get a lower cutoff (`region_min_cutoff`) than the rest of the face: the lips and brows follow
speech and brow raises almost fully (self-drive mesh gain ≥ 0.95 on d10) with no more jitter
on still faces. The lids likewise take a cutoff floor from the speed of their eye's lid gap,
rectified so that a blink's turn (down, then up a frame later) does not cancel it: the lids
reopen on the frame the driver's do.

Robustness (issue #15). A face is believed only when it is plausible: its rigid shape (the
skull points, `topology.RIGID`, after a similarity fit, in interoculars) is within
`max_jump` of the last believed face's, or it has stayed consistent for `confirm_frames`
frames; after an absence (and at the start) a face needs `reappear_frames` consistent frames.
An unbelieved face is "no face" (hold, then ease to neutral), so the one-frame phantom face a
tracker finds on a blank wall never reaches the avatar nor the calibration. A believed face
whose rigid shape stays more than `identity_distance` from the calibrated neutral for
`identity_s` is another person: the estimator recalibrates by itself (as the `n` hotkey does)
and says so for `notice_s` (`notice`, shown in the overlay). After a cut — the face jumps in
the image (position or size) further than a head moves in a frame, or comes back after a while
without a face — its first `identity_s` must stay within the stricter `cut_identity_distance`,
so a similar person after a cut is caught too (25 of the 30 cuts between the six eval drivers,
within 15–43 frames; the other five are faces the tracker reads as closer than one person's
own second-to-second variation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.core.ramp import smoothstep
from realtime.face import geometry, topology
from realtime.face.calibrate import NeutralCalibrator
from realtime.face.filters import OneEuroFilter, Speed
from realtime.face.state import FaceState
from realtime.face.teeth import TeethGauge

_RIGID = list(topology.RIGID)
_EYES = list(topology.EYE_POINTS)
_MOUTH = sorted(set(topology.OUTER_LIP) | set(topology.INNER_LIP_UPPER) | set(topology.INNER_LIP_LOWER))
_BROWS = list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)
_LIP_UP = list(topology.INNER_LIP_UPPER[1:-1])
_LIP_LO = list(topology.INNER_LIP_LOWER[1:-1])
_UPPER_LIDS = list(topology.RIGHT_EYE_UPPER) + list(topology.LEFT_EYE_UPPER)
_LIDS = (sorted(set(topology.RIGHT_EYE_UPPER) | set(topology.RIGHT_EYE_LOWER)),
         sorted(set(topology.LEFT_EYE_UPPER) | set(topology.LEFT_EYE_LOWER)))
_GAPS = (np.array(topology.RIGHT_EYE_GAP_PAIRS), np.array(topology.LEFT_EYE_GAP_PAIRS))
_IO = (_RIGID.index(topology.EYE_OUTER[0]), _RIGID.index(topology.EYE_OUTER[1]))
NEW_FACE_NOTICE = "new face: recalibrating"


@dataclass
class EstimatorConfig:
    calibration_s: float = 1.0
    ease_s: float = 0.25          # no face → neutral (and back) within this time (0: at once)
    pose_min_cutoff: float = 4.0  # Hz, on rotation vectors in degrees
    pose_beta: float = 0.2
    expr_min_cutoff: float = 2.0  # Hz, on canonical residuals
    expr_beta: float = 4.0
    eye_beta: float = 40.0        # expr_beta of the lids and irises: a blink (lids shut and open
    #                               within ~5 frames) passes instead of being smoothed away
    # Each eye's lids also get a cutoff floor from the speed of that eye's lid gap (rectified:
    # a blink's turn from closing to opening does not cancel it), beyond a dead zone: without
    # it the lids reopened a frame late — the points' own filtered speeds cancel at the turn —
    # and the shut-lid mapping (realtime.mesh.fuse) held them shut that frame.
    lid_beta: float = 60.0        # Hz per canonical unit/s of the lid gap's speed
    lid_noise_speed: float = 0.3  # canonical units/s: a still eye's gap jitter (eval drivers' median)
    # The lower face and the forehead (see the module docstring): cutoff at rest (Hz), and how
    # fast it rises (Hz per canonical unit/s) with the speed of the mouth's shape (lip gap,
    # inner and outer widths) and of the brows' heights beyond a dead zone (`*_noise_speed`,
    # canonical units/s: what tracking noise alone reads); `region_d_cutoff` smooths those
    # speeds. region_min_cutoff = expr_min_cutoff with mouth_beta = brow_beta = 0 (and lid_beta
    # = 0, below) is the single expression filter of before.
    region_min_cutoff: float = 1.0
    mouth_beta: float = 15.0
    brow_beta: float = 40.0
    region_d_cutoff: float = 2.0
    mouth_noise_speed: float = 0.25
    brow_noise_speed: float = 0.1
    # Plausibility gate (module docstring). Rigid-shape distances are RMS over the RIGID points
    # after a similarity fit, in interoculars. Frame to frame a real face moves at most 0.034 on
    # the six eval drivers (d10, talking and turning; p99 ≤ 0.023): a larger jump is a tracker
    # fit on something else (a phantom on a wall, a squashed face half out of the frame).
    max_jump: float = 0.08
    confirm_frames: int = 3       # a jumped shape is believed once it held this many frames
    reappear_frames: int = 2      # a face after no face (or at the start): this many frames
    # Identity: the same person stays within 0.020 of their calibrated neutral for any 1 s on
    # the eval drivers (min over the second; single frames reach 0.043 on head turns); another
    # person is 0.018–0.059 from it (MediaPipe's mesh pulls every face towards its mean face,
    # so two similar people can read as one). 0.03 held for 1 s: no false recalibration, most
    # cuts between the eval drivers caught.
    identity_distance: float = 0.03
    identity_s: float = 1.0
    # A cut: the face jumps in the image further than a head moves in a frame (the eval drivers:
    # ≤ 0.117 interocular, ≤ 0.061 in log size; every cut between them but one jumps more), or
    # comes back after `cut_absence_s` without a face. Then the face's first `identity_s` is held
    # to a stricter bound, `cut_identity_distance`: the same person stays within 0.020 of their
    # neutral over any 1 s of the eval drivers, so a face whose whole first second is further is
    # someone else even when it is within `identity_distance` (four more of the 30 cuts: 25).
    cut_move: float = 0.15           # interocular distances in one frame ...
    cut_scale: float = 0.09          # ... or |log(size ratio)| in one frame
    cut_absence_s: float = 0.5
    cut_identity_distance: float = 0.022
    notice_s: float = 2.0         # how long `notice` says that it recalibrated


def mouth_features(expression: np.ndarray) -> np.ndarray:
    """(3,) lip gap (inner lips, mean), inner and outer mouth width, of a canonical shape or
    expression residual (the same up to a constant)."""
    e = expression
    return np.array([(e[_LIP_LO, 1] - e[_LIP_UP, 1]).mean(), e[308, 0] - e[78, 0], e[291, 0] - e[61, 0]])


def lid_gaps(expression: np.ndarray) -> tuple[float, float]:
    """Lid gap of the right and left eye (mean over their gap pairs, lower − upper y) of a
    canonical shape or expression residual (the same up to a constant)."""
    e = expression
    right, left = (float((e[g[:, 1], 1] - e[g[:, 0], 1]).mean()) for g in _GAPS)
    return right, left


def brow_features(expression: np.ndarray) -> np.ndarray:
    """(2,) height of each brow (mean y of its points) of a canonical shape or residual."""
    e = expression
    return np.array([e[list(topology.RIGHT_BROW), 1].mean(), e[list(topology.LEFT_BROW), 1].mean()])


def region_weights(neutral_shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(478, 1) weights of each landmark in the mouth region and in the brow region, from a
    canonical neutral (y down): 1 on the lips and below the upper lip (chin, jaw), fading to 0
    at the nose tip; 1 on the brows and above (forehead), fading to 0 at the upper lids. The
    lids and irises are in neither (they have `eye_beta`)."""
    y = np.asarray(neutral_shape, np.float64)[:, 1]
    mouth = np.zeros(topology.N_LANDMARKS)
    mouth[_MOUTH] = 1.0
    nose, lip = y[topology.NOSE_TIP], y[0]
    mouth = np.maximum(mouth, smoothstep((y - nose) / max(lip - nose, 1e-9)))
    brow = np.zeros(topology.N_LANDMARKS)
    brow[_BROWS] = 1.0
    lid, brow_y = y[_UPPER_LIDS].min(), y[_BROWS].mean()
    brow = np.maximum(brow, smoothstep((lid - y) / max(lid - brow_y, 1e-9)))
    mouth[_EYES] = 0.0
    brow[_EYES] = 0.0
    return mouth[:, None], brow[:, None]


def rigid_distance(reference: np.ndarray, points: np.ndarray) -> float:
    """How far apart two rigid shapes are, whatever their pose: the RMS residual of the
    similarity fit of `reference` onto `points` ((len(RIGID), 3) each, any units), in
    interoculars (outer eye corners) of the fitted reference. 0 for the same shape."""
    fit = geometry.umeyama(reference, points)
    residual = fit.apply(reference) - points
    io = fit.scale * float(np.linalg.norm(reference[_IO[0]] - reference[_IO[1]]))
    return float(np.sqrt((residual ** 2).sum(1).mean()) / max(io, 1e-9))


def face_place(landmarks: np.ndarray, t: float) -> tuple[np.ndarray, float, float]:
    """(centre, size, t): where a face is at time `t` (s), for `is_cut`: the mean of its skull
    points (x, y) and its interocular distance, in the landmarks' pixels."""
    lm = np.asarray(landmarks, np.float64)
    return lm[_RIGID, :2].mean(0), max(geometry.interocular(lm), 1e-9), float(t)


def is_cut(last: tuple, now: tuple, config: EstimatorConfig) -> bool:
    """Whether a face placed at `now` (`face_place`) after one at `last` is a cut, maybe to
    someone else: it jumped further than a head moves in a frame (`cut_move` interoculars, or
    `cut_scale` in log size) or came back after `cut_absence_s` without a face. The live
    estimator's test, and video enrollment's shots (`profiles.persons.split_shots`)."""
    (c0, s0, t0), (centre, size, t) = last, now
    return (t - t0 >= config.cut_absence_s
            or float(np.linalg.norm(centre - c0)) > config.cut_move * min(size, s0)
            or abs(np.log(size / s0)) > config.cut_scale)


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
        beta[_EYES] = c.eye_beta
        self._f_expr = OneEuroFilter(c.expr_min_cutoff, beta)
        if c.region_min_cutoff <= 0:
            raise ValueError(f"EstimatorConfig.region_min_cutoff must be > 0 Hz, got {c.region_min_cutoff}")
        self._s_mouth = Speed(c.region_d_cutoff)
        self._s_brow = Speed(c.region_d_cutoff)
        self._s_lids = (Speed(c.region_d_cutoff, rectified=True), Speed(c.region_d_cutoff, rectified=True))
        self._weights_of = None   # the neutral the region weights were computed for
        self._w_mouth = self._w_brow = np.zeros((topology.N_LANDMARKS, 1))
        self._shown = FaceState.neutral(present=False)  # last state handed out
        self._ease_from: FaceState | None = None
        self._ease_t0: float | None = None
        self._lost = True
        self._reference: np.ndarray | None = None   # rigid points of the last believed face
        self._candidate: np.ndarray | None = None   # ... of the last face not (yet) believed
        self._streak = 0      # consecutive consistent frames of the candidate
        self._need = 0        # how many it needs
        self._held: list[tuple[np.ndarray, float]] = []  # the candidate's frames so far
        self._absent = True   # no face since the last believed one (or none yet)
        self._far_since: float | None = None        # first frame of a run far from the neutral
        self._placed: tuple[np.ndarray, float, float] | None = None  # last believed face: centre, size, t
        self._verify: list[float] | None = None     # after a cut: [until, nearest distance so far]
        self._notice_t: float | None = None
        self.rejected = 0            # frames with a face that was not believed
        self.auto_recalibrations = 0

    @property
    def neutral(self):
        return self.calibrator.neutral

    @property
    def absent(self) -> bool:
        """True from the start, and from a frame without a face, until a face is believed: a
        face not believed meanwhile is one appearing; one not believed while it is False jumped
        from the face believed last (a cut, or a tracker's mis-fit)."""
        return self._absent

    def recalibrate(self) -> None:
        """Start a new neutral calibration from the next frames (hotkey `n`)."""
        self.calibrator.reset()
        self._reset_filters()

    def notice(self, t: float) -> str | None:
        """A one-line message for the overlay while the estimator has something to say."""
        if self._notice_t is not None and t - self._notice_t < self.config.notice_s:
            return NEW_FACE_NOTICE
        return None

    def believe(self, landmarks: np.ndarray, t: float) -> bool:
        """Whether this frame's face is plausible (updates the gate; module docstring). The
        frames held back before a face is believed join the calibration once it is, so a
        driver's neutral is taken from the same frames as without the gate."""
        c = self.config
        lm = np.asarray(landmarks, np.float64)
        rigid = lm[_RIGID]
        if self._streak and rigid_distance(self._candidate, rigid) <= c.max_jump:
            self._streak += 1
            self._held.append((lm, t))
        else:
            self._streak = 1
            self._held = [(lm, t)]
            if self._reference is None:   # the first face: nothing to compare it with
                self._need = c.reappear_frames
            else:
                near = rigid_distance(self._reference, rigid) <= c.max_jump
                self._need = max(1 if near else c.confirm_frames, c.reappear_frames if self._absent else 1)
        self._candidate = rigid
        if self._streak < self._need:
            return False
        for held, t_held in self._held[:-1]:
            if not self.calibrator.done:
                self.calibrator.add(held, t_held)
        self._reference, self._streak, self._absent, self._held = rigid, 0, False, []
        return True

    def _check_identity(self, landmarks: np.ndarray, t: float, cut: bool) -> None:
        """Recalibrate when the calibrated neutral no longer fits the face for `identity_s`, or
        after a cut (`_cut`), when it does not fit the face's whole first `identity_s` within
        the stricter `cut_identity_distance`."""
        neutral = self.calibrator.neutral
        if not self.calibrator.done or neutral is None:
            self._far_since = self._verify = None
            return
        far = rigid_distance(neutral.shape[_RIGID], np.asarray(landmarks, np.float64)[_RIGID])
        if cut:
            self._verify = [t + self.config.identity_s, far]
        elif self._verify is not None:
            self._verify[1] = min(self._verify[1], far)
            if t >= self._verify[0]:
                nearest, self._verify = self._verify[1], None
                if nearest > self.config.cut_identity_distance:
                    self._new_face(t)
                    return
        if far <= self.config.identity_distance:
            self._far_since = None
        elif self._far_since is None:
            self._far_since = t
        elif t - self._far_since >= self.config.identity_s:
            self._new_face(t)

    def _new_face(self, t: float) -> None:
        self._far_since = self._verify = None
        self._notice_t = t
        self.auto_recalibrations += 1
        self.recalibrate()
        self._start_ease(t)   # from the old reading to the new neutral, not a snap

    def _cut(self, landmarks: np.ndarray, t: float) -> bool:
        """Whether this believed face jumped from the last one (position or size, in one step)
        or came back after a while without a face: a cut, maybe to someone else."""
        last, self._placed = self._placed, face_place(landmarks, t)
        return last is not None and is_cut(last, self._placed, self.config)

    def _reset_filters(self) -> None:
        for f in (self._f_rot, self._f_trans, self._f_scale, self._f_expr, self._s_mouth,
                  self._s_brow, *self._s_lids):
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
        """Filtered state for the frame at time `t` (seconds); `landmarks` None = no face.
        A face that is not believed (`believe`) counts as no face."""
        if landmarks is None:
            self._absent, self._streak, self._far_since = True, 0, None
        elif not self.believe(landmarks, t):
            self.rejected += 1
            landmarks = None
        else:
            self._check_identity(landmarks, t, self._cut(landmarks, t))
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
            expression=self._filter_expression(raw.expression, t),
            present=True,
        )

    def _filter_expression(self, expression: np.ndarray, t: float) -> np.ndarray:
        c = self.config
        neutral = self.calibrator.neutral
        if neutral is not self._weights_of:   # a new (or provisional) neutral: new regions
            self._w_mouth, self._w_brow = region_weights(neutral.shape)
            w = np.maximum(self._w_mouth, self._w_brow)
            self._f_expr.min_cutoff = c.expr_min_cutoff + w * (c.region_min_cutoff - c.expr_min_cutoff)
            self._weights_of = neutral
        rest = self._f_expr.min_cutoff
        v_mouth = max(0.0, self._s_mouth(mouth_features(expression), t) - c.mouth_noise_speed)
        v_brow = max(0.0, self._s_brow(brow_features(expression), t) - c.brow_noise_speed)
        floor = np.maximum(rest + self._w_mouth * (c.mouth_beta * v_mouth),
                           rest + self._w_brow * (c.brow_beta * v_brow))
        for lids, speed, gap in zip(_LIDS, self._s_lids, lid_gaps(expression)):
            v = max(0.0, speed(gap, t) - c.lid_noise_speed)
            floor[lids] = np.maximum(floor[lids], rest[lids] + c.lid_beta * v)
        return self._f_expr(expression, t, floor=floor)

    def _start_ease(self, t: float) -> None:
        self._ease_from = self._shown
        self._ease_t0 = t

    def _eased(self, target: FaceState, t: float) -> FaceState:
        if self._ease_from is not None and self.config.ease_s <= 0.0:   # no ease (swap): at once
            self._ease_from = None
        if self._ease_from is None:
            return target
        w = smoothstep((t - self._ease_t0) / self.config.ease_s)
        if w >= 1.0:
            self._ease_from = None
            return target
        return self._ease_from.blend(target, w)


def set_teeth(state: FaceState, gauge: TeethGauge, frame, landmarks, t: float) -> None:
    """`state.teeth` and `state.tongue` from `gauge` for a frame whose face is present
    (Frame.teeth and Frame.tongue, a tracked clip's, or its image); without a face the state's
    own values stay, the eased hold's, which fade with the mouth, and the gauge starts afresh
    with the next face."""
    if state.present:
        state.teeth = gauge(frame.image, landmarks, t, frame.teeth, frame.tongue)
        state.tongue = gauge.tongue
    else:
        gauge.reset()


class EstimateStage:
    """Frame.landmarks → Frame.state, with the share of the driver's open mouth that shows
    teeth (`FaceState.teeth`, read from Frame.image). Scripted frames (state already set) pass
    through.

    `clock(frame)` gives the time the filters see: the capture time live, the media time
    (index / fps) when a file is processed offline, so results do not depend on CPU speed.
    `teeth=False` leaves `FaceState.teeth` at 0 (the swap shows the driver's own mouth). While
    no face is tracked the teeth fade with the eased hold of the mouth (`FaceState.blend`).
    """

    name = "estimate"

    def __init__(self, estimator: Estimator, clock, teeth: bool = True):
        self.estimator = estimator
        self.clock = clock
        self.teeth = TeethGauge() if teeth else None

    def __call__(self, frame) -> None:
        if frame.state is None:
            t = self.clock(frame)
            frame.state = state = self.estimator(frame.landmarks, t)
            if self.teeth is not None:
                set_teeth(state, self.teeth, frame, frame.landmarks, t)
