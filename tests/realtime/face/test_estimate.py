"""realtime.face.estimate.Estimator (pose + expression against the calibrated neutral, filters,
easing with no face) and realtime.face.state.FaceState."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.estimate import EstimateStage, Estimator, EstimatorConfig, region_weights
from realtime.face.filters import OneEuroFilter
from realtime.face.geometry import Similarity
from realtime.face.state import FaceState
from realtime.io.performance import Blendshapes

FPS = 30.0


@pytest.fixture(scope="module")
def face(astronaut_landmarks):
    lm = np.array(astronaut_landmarks)
    frame = G.face_frame(lm)
    return lm, frame, frame.invert_points(lm)


def _calibrated(lm, frames=36, noise=0.0, seed=0, config=None) -> Estimator:
    """An estimator (of `config`) calibrated on `frames` frames (> 1 s at 30 fps) of `lm`."""
    rng = np.random.default_rng(seed)
    est = Estimator(config)
    for i in range(frames):
        est(lm + rng.normal(0, noise, lm.shape) if noise else lm, i / FPS)
    assert est.calibrator.done
    return est


def _posed(frame: Similarity, canon, yaw=0.0, pitch=0.0, roll=0.0, scale=1.0, shift=(0, 0, 0)):
    """Landmarks of `canon` with the head turned by (yaw, pitch, roll) about the face centre,
    `scale` times nearer and shifted by `shift` pixels."""
    q = G.rotation_from_euler(yaw, pitch, roll)
    return Similarity(q @ frame.rotation, frame.scale * scale,
                      frame.translation + np.asarray(shift, float)).apply(canon)


def _angle_deg(r):
    return float(np.degrees(np.linalg.norm(G.rotvec_from_matrix(r))))


# ------------------------------------------------------------------------------------- pose
POSES = [(35, 0, 0), (-35, 0, 0), (0, 35, 0), (0, -35, 0), (0, 0, 35), (0, 0, -35),
         (20, -15, 10), (-30, 25, -20), (35, 35, 35), (-35, -35, -35), (12, 30, -25)]


def test_pose_recovered_within_one_degree(face):
    """Real landmarks rotated by known angles (plus scale, translation and noise) give back the
    angles within 1°, relative to the neutral the estimator was calibrated on."""
    lm, frame, canon = face
    est = _calibrated(lm, noise=0.3)
    rng = np.random.default_rng(1)
    for k, (yaw, pitch, roll) in enumerate(POSES):
        scale = (0.75, 1.3)[k % 2]
        shift = (40.0 * (-1) ** k, -25.0, 0.0)
        moved = _posed(frame, canon, yaw, pitch, roll, scale, shift)
        state = est.measure(moved + rng.normal(0, 0.3, lm.shape), 2.0 + k / FPS)
        np.testing.assert_allclose(state.angles, (yaw, pitch, roll), atol=1.0,
                                   err_msg=f"pose {(yaw, pitch, roll)}")
        assert state.scale == pytest.approx(scale, rel=0.01)
        np.testing.assert_allclose(state.translation * est.neutral.scale, shift, atol=1.5)


def test_pose_about_another_centre_only_moves_the_translation(face):
    """Rotating the whole image (not the head about its own centre) gives the same angles."""
    lm, frame, canon = face
    est = _calibrated(lm)
    q = G.rotation_from_euler(-20, 10, 15)
    moved = lm @ q.T  # about the image origin, far from the face
    state = est.measure(moved, 2.0)
    np.testing.assert_allclose(state.angles, (-20, 10, 15), atol=1e-6)
    assert state.scale == pytest.approx(1.0)
    np.testing.assert_allclose(state.expression, 0.0, atol=1e-9)


def test_expression_is_the_residual_in_the_canonical_frame(face):
    """An expression applied in the canonical frame and posed by any rigid motion comes back
    exactly (the rigid pose points do not move with a jaw drop or a blink)."""
    lm, frame, canon = face
    est = _calibrated(lm)
    field = Blendshapes(canon)({"jaw_open": 0.7, "blink_left": 1.0})
    moved = _posed(frame, canon + field, yaw=25, pitch=-10, roll=5, scale=1.2, shift=(10, 5, 0))
    state = est.measure(moved, 2.0)
    np.testing.assert_allclose(state.expression, field, atol=1e-6)
    np.testing.assert_allclose(state.angles, (25, -10, 5), atol=1e-6)


def test_filtered_state_settles_on_a_held_pose(face):
    lm, frame, canon = face
    est = _calibrated(lm)
    target = _posed(frame, canon, 30, -20, 10)
    for i in range(36, 66):
        state = est(target, i / FPS)
    assert state.present
    np.testing.assert_allclose(state.angles, (30, -20, 10), atol=0.05)


def test_filters_smooth_tracking_noise(face):
    lm, frame, canon = face
    rng = np.random.default_rng(2)
    est = _calibrated(lm)
    raw, filtered = [], []
    for i in range(36, 126):
        noisy = lm + rng.normal(0, 0.5, lm.shape)
        raw.append(est.measure(noisy, i / FPS).expression)
        filtered.append(est(noisy, i / FPS).expression)
    raw, filtered = np.array(raw[10:]), np.array(filtered[10:])
    assert filtered.std(0).mean() < 0.6 * raw.std(0).mean()


# ---------------------------------------------------------------------------------- no face
def test_no_face_eases_to_neutral_within_300_ms_and_holds(face):
    lm, frame, canon = face
    est = _calibrated(lm)
    field = Blendshapes(canon)({"jaw_open": 0.7})
    away = _posed(frame, canon + field, yaw=20, pitch=10)
    i = 36
    for _ in range(15):
        before = est(away, i / FPS)
        i += 1
    assert _angle_deg(before.rotation) > 20
    t_lost = i / FPS
    states = []
    while i / FPS < t_lost + 1.0:
        states.append((i / FPS - t_lost, est(None, i / FPS)))
        i += 1
    # the first frame without a face does not jump
    assert _angle_deg(states[0][1].rotation @ before.rotation.T) < 1.0
    # eased, not snapped: part of the way there after 100 ms
    mid = [s for dt, s in states if 0.09 < dt < 0.11][0]
    assert 2.0 < _angle_deg(mid.rotation) < _angle_deg(before.rotation) - 2.0
    for dt, s in states:
        if dt >= 0.3:  # ease_s = 0.25: neutral within 300 ms, and held there
            np.testing.assert_allclose(s.rotation, np.eye(3), atol=1e-9)
            np.testing.assert_allclose(s.expression, 0.0, atol=1e-9)
            np.testing.assert_allclose(s.translation, 0.0, atol=1e-9)
            assert s.scale == pytest.approx(1.0)
            assert not s.present
    # angles decrease monotonically during the ease
    angles = [_angle_deg(s.rotation) for _, s in states]
    assert all(b <= a + 1e-9 for a, b in zip(angles, angles[1:]))


def test_face_returning_eases_back_in(face):
    lm, frame, canon = face
    est = _calibrated(lm)
    i = 36
    for _ in range(15):
        est(None, i / FPS)
        i += 1
    back = _posed(frame, canon, yaw=24)
    t_back = i / FPS
    first = est(back, t_back)
    assert _angle_deg(first.rotation) < 1.0  # no jump on the frame the face comes back
    seen = []
    while i / FPS < t_back + 0.6:
        i += 1
        seen.append((i / FPS - t_back, est(back, i / FPS)))
    mid = [s for dt, s in seen if 0.09 < dt < 0.11][0]
    assert 2.0 < mid.angles[0] < 22.0
    for dt, s in seen:
        if dt >= 0.3:
            assert s.present
            assert s.angles[0] == pytest.approx(24.0, abs=0.5)


def test_present_is_true_on_every_frame_with_a_face(face):
    """Once believed: the first face (like any face after no face) waits for a second
    consistent frame (`reappear_frames`, test_estimate_robust.py)."""
    lm, frame, canon = face
    est = Estimator()
    wait = EstimatorConfig().reappear_frames - 1
    for i in range(10):
        assert est(lm, i / FPS).present == (i >= wait), f"frame {i}"


def test_no_face_before_any_face_is_a_neutral_hold():
    est = Estimator()
    for i in range(5):
        s = est(None, i / FPS)
        assert not s.present
        np.testing.assert_array_equal(s.rotation, np.eye(3))
        np.testing.assert_array_equal(s.expression, 0.0)
    assert est.neutral is None


def test_recalibrate_takes_a_new_neutral(face):
    lm, frame, canon = face
    est = _calibrated(lm)
    turned = _posed(frame, canon, yaw=20)
    assert est.measure(turned, 2.0).angles[0] == pytest.approx(20, abs=1e-6)
    est.recalibrate()
    assert not est.calibrator.done
    for i in range(40):
        est(turned, 3.0 + i / FPS)
    assert est.calibrator.done
    assert est.measure(turned, 5.0).angles == pytest.approx((0, 0, 0), abs=1e-6)
    assert est.measure(lm, 5.0).angles[0] == pytest.approx(-20, abs=1e-6)


# ------------------------------------------------------------------------------- the stage
def test_estimate_stage_uses_the_clock_and_passes_scripted_states(face):
    lm, frame, canon = face
    times = []
    stage = EstimateStage(Estimator(), clock=lambda f: times.append(f.index / FPS) or f.index / FPS)
    scripted = FaceState(rotation=G.rotation_from_euler(10, 0, 0))
    f = Frame(index=0, t_capture=0.0, state=scripted)
    stage(f)
    assert f.state is scripted and times == []
    f = Frame(index=3, t_capture=0.0, landmarks=lm)
    stage(f)
    assert isinstance(f.state, FaceState) and times == [0.1]
    f = Frame(index=4, t_capture=0.0, landmarks=None)
    stage(f)
    assert isinstance(f.state, FaceState)


# -------------------------------------------------------------------------------- FaceState
def test_face_state_blend_endpoints_and_midpoint():
    rng = np.random.default_rng(3)
    a = FaceState(rotation=G.rotation_from_euler(-10, 5, 0), translation=np.array([1.0, 2, 3]),
                  scale=0.8, expression=rng.normal(size=(478, 3)), present=True, teeth=0.2)
    b = FaceState(rotation=G.rotation_from_euler(30, -15, 20), translation=np.array([-1.0, 0, 1]),
                  scale=1.4, expression=rng.normal(size=(478, 3)), present=False, teeth=0.6)
    for w, ref in ((0.0, a), (1.0, b)):
        s = a.blend(b, w)
        np.testing.assert_allclose(s.rotation, ref.rotation, atol=1e-12)
        np.testing.assert_allclose(s.translation, ref.translation)
        assert s.scale == pytest.approx(ref.scale)
        np.testing.assert_allclose(s.expression, ref.expression)
        assert s.present == ref.present and s.teeth == pytest.approx(ref.teeth)
    mid = a.blend(b, 0.5)
    assert mid.teeth == pytest.approx(0.4)
    np.testing.assert_allclose(mid.expression, 0.5 * (a.expression + b.expression))
    assert mid.scale == pytest.approx(1.1)
    # geodesic: halfway in angle, on the rotation from a to b
    half = G.matrix_from_rotvec(0.5 * G.rotvec_from_matrix(b.rotation @ a.rotation.T)) @ a.rotation
    np.testing.assert_allclose(mid.rotation, half, atol=1e-12)
    total = _angle_deg(b.rotation @ a.rotation.T)
    assert _angle_deg(mid.rotation @ a.rotation.T) == pytest.approx(total / 2)
    assert _angle_deg(b.rotation @ mid.rotation.T) == pytest.approx(total / 2)


def test_face_state_defaults_and_angles():
    s = FaceState.neutral()
    assert s.present and s.scale == 1.0
    np.testing.assert_array_equal(s.rotation, np.eye(3))
    assert s.expression.shape == (478, 3) and not s.expression.any()
    assert not FaceState.neutral(present=False).present
    s.expression[0, 0] = 1.0
    assert not FaceState.neutral().expression.any()  # no shared default array
    assert FaceState(rotation=G.rotation_from_euler(12, -7, 3)).angles == pytest.approx((12, -7, 3))


def test_estimator_config_defaults():
    c = EstimatorConfig()
    assert c.calibration_s == 1.0 and c.ease_s == 0.25


def test_a_blink_passes_faster_than_a_lip_move_of_the_same_size(face):
    """The lids and irises are filtered with eye_beta: a step of the upper lid closes most of the
    way in one frame while the same step of a lip point is still smoothed."""
    from realtime.face import topology as T

    lm, frame, canon = face
    est = _calibrated(lm)
    lid, lip = T.RIGHT_EYE_UPPER[4], T.OUTER_LIP[5]
    assert lid in T.EYE_POINTS and lip not in T.EYE_POINTS
    step = np.zeros_like(canon)
    gap = abs(canon[T.RIGHT_EYE_LOWER[4], 1] - canon[lid, 1])
    step[[lid, lip], 1] = gap   # the lid shuts; the lip moves as far
    target = frame.apply(canon + step)
    state = est(target, 36 / FPS)
    got = state.expression[[lid, lip], 1] / step[[lid, lip], 1]
    assert got[0] > 0.6 and got[0] > got[1] + 0.2, got
    # eye_beta = expr_beta (and no separate mouth filter) filters both alike
    c = EstimatorConfig()
    est = _calibrated(lm, config=EstimatorConfig(eye_beta=c.expr_beta, region_min_cutoff=c.expr_min_cutoff,
                                                 mouth_beta=0.0, brow_beta=0.0, lid_beta=0.0))
    state = est(target, 36 / FPS)
    same = state.expression[[lid, lip], 1] / step[[lid, lip], 1]
    assert same[0] == pytest.approx(same[1], abs=0.02)



def test_lids_reopen_on_the_frame_the_driver_does(face):
    """A blink: the right eye shuts over two frames, stays shut one, reopens in one. With the
    lid-gap speed as the lids' cutoff floor the gap is back ≥ 85% on that frame; without it
    (lid_beta 0) the lid points' own filtered speeds cancel at the turn and it lags."""
    lm, frame, canon = face
    bs = Blendshapes(canon)
    blink = [0.0, 0.5, 1.0, 1.0, 0.0]
    back = {}
    for name, config in (("new", EstimatorConfig()), ("old", EstimatorConfig(lid_beta=0.0))):
        est = _calibrated(lm, config=config)
        gaps = [G.eye_opening(canon + est(frame.apply(canon + bs({"blink_right": b})),
                                          (36 + k) / FPS).expression)[0] for k, b in enumerate(blink)]
        open_, shut = G.eye_opening(canon)[0], G.eye_opening(canon + bs({"blink_right": 1.0}))[0]
        back[name] = (gaps[4] - shut) / (open_ - shut)
    assert back["new"] >= 0.85 and back["old"] < 0.7, back

# ------------------------------------------------------------------ mouth and brows (issue 13)
# The constants before the mouth, brow and lid regions had their own floors: one One-Euro filter
# (2 Hz, beta 4) on every expression point but the eyes.
OLD = EstimatorConfig(region_min_cutoff=2.0, mouth_beta=0.0, brow_beta=0.0, lid_beta=0.0)
_MOUTH = sorted(set(T.OUTER_LIP) | set(T.INNER_LIP_UPPER) | set(T.INNER_LIP_LOWER))
_BROWS = list(T.RIGHT_BROW) + list(T.LEFT_BROW)


def _step_response(face, config, weights, measure, frames=4):
    """Fraction of a sudden expression step that each of the next `frames` frames shows."""
    lm, frame, canon = face
    est = _calibrated(lm, config=config)
    field = Blendshapes(canon)(weights)
    target = frame.apply(canon + field)
    m0, m1 = measure(canon), measure(canon + field)
    return np.array([(measure(canon + est(target, (36 + k) / FPS).expression) - m0) / (m1 - m0)
                     for k in range(frames)])


def _brow_height(shape):
    return -shape[_BROWS, 1].mean()


def test_region_weights(face):
    lm, frame, canon = face
    mouth, brow = region_weights(canon)
    assert mouth.shape == brow.shape == (478, 1)
    assert (mouth[_MOUTH] == 1).all() and mouth[T.CHIN, 0] == 1      # lips, chin, jaw
    assert (brow[_BROWS] == 1).all() and brow[T.FOREHEAD, 0] == 1    # brows, forehead
    assert mouth[T.NOSE_TIP, 0] == 0 and brow[T.NOSE_TIP, 0] == 0
    assert (mouth[list(T.EYE_POINTS)] == 0).all() and (brow[list(T.EYE_POINTS)] == 0).all()
    assert (brow[_MOUTH] == 0).all() and (mouth[_BROWS] == 0).all()


def test_a_fast_mouth_step_passes_within_two_frames(face):
    new = _step_response(face, EstimatorConfig(), {"jaw_open": 0.5}, G.mouth_opening)
    old = _step_response(face, OLD, {"jaw_open": 0.5}, G.mouth_opening)
    assert new[0] >= 0.8 and new[1] >= 0.95
    assert old[1] < 0.9                        # what the single expression filter did


def test_a_fast_brow_raise_passes_within_two_frames(face):
    new = _step_response(face, EstimatorConfig(), {"brow_raise": 1.0}, _brow_height)
    old = _step_response(face, OLD, {"brow_raise": 1.0}, _brow_height)
    assert new[0] >= 0.8 and new[1] >= 0.95
    assert old[1] < 0.8


def test_speech_rate_mouth_keeps_its_amplitude(face):
    """The lip gap of a 4 Hz open-close (syllable rate) keeps ≥ 83% of its swing (the old
    constants kept ~66%)."""
    lm, frame, canon = face
    bs = Blendshapes(canon)
    amp = {}
    for name, config in (("new", EstimatorConfig()), ("old", OLD)):
        est = _calibrated(lm, config=config)
        raw, out = [], []
        for k in range(90):
            field = bs({"jaw_open": 0.25 * (1 - np.cos(2 * np.pi * 4 * k / FPS))})
            state = est(frame.apply(canon + field), (36 + k) / FPS)
            raw.append(G.mouth_opening(canon + field))
            out.append(G.mouth_opening(canon + state.expression))
        amp[name] = np.ptp(out[30:]) / np.ptp(raw[30:])
    assert amp["new"] >= 0.83 and amp["old"] < 0.7


def test_a_still_noisy_face_jitters_no_more_than_before(face):
    """Tracking noise on a still face (0.5 px per coordinate): the mouth and brow points and the
    whole face jitter no more than with the old constants."""
    lm, frame, canon = face
    jitter = {}
    for name, config in (("new", EstimatorConfig()), ("old", OLD)):
        per_seed = []
        for seed in range(3):
            rng = np.random.default_rng(10 + seed)
            est = _calibrated(lm, noise=0.5, seed=seed, config=config)
            e = np.array([est(lm + rng.normal(0, 0.5, lm.shape), (36 + k) / FPS).expression
                          for k in range(120)])[20:] * frame.scale
            per_seed.append([e[:, idx, :2].std(0).mean() for idx in (_MOUTH, _BROWS, slice(None))])
        jitter[name] = np.mean(per_seed, 0)
    assert (jitter["new"] <= jitter["old"]).all(), jitter


def test_old_constants_are_one_plain_expression_filter(face):
    """region_min_cutoff = expr_min_cutoff and no region betas: exactly the single One-Euro
    filter of before (what `bench --compare` needs as a baseline)."""
    lm, frame, canon = face
    rng = np.random.default_rng(3)
    est = _calibrated(lm, config=OLD)
    beta = np.full((478, 1), OLD.expr_beta)
    beta[list(T.EYE_POINTS)] = OLD.eye_beta
    ref = OneEuroFilter(OLD.expr_min_cutoff, beta)
    bs = Blendshapes(canon)
    for k in range(30):
        shape = canon + bs({"jaw_open": 0.3 * np.sin(k / 3.0), "brow_raise": 0.5 * np.cos(k / 4.0)})
        noisy = frame.apply(shape) + rng.normal(0, 0.3, lm.shape)
        t = (36 + k) / FPS
        raw = est.measure(noisy, t).expression
        if k == 0:
            est._f_expr.reset()
            ref(raw, t)
            est._filter_expression(raw, t)
            continue
        np.testing.assert_allclose(est._filter_expression(raw, t), ref(raw, t), atol=1e-12)
