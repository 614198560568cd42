"""realtime.face.calibrate.NeutralCalibrator: a robust neutral from the first second of tracking."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.calibrate import NeutralCalibrator
from realtime.io.performance import Blendshapes

FPS = 30.0


@pytest.fixture(scope="module")
def face(astronaut_landmarks):
    lm = np.array(astronaut_landmarks)
    frame = G.face_frame(lm)
    neutral = frame.invert_points(lm)
    opened = frame.apply(neutral + Blendshapes(neutral)({"jaw_open": 0.8}))
    return lm, frame, neutral, opened


def test_identical_frames_give_that_face(face):
    lm, frame, neutral, _ = face
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(5):
        n = cal.add(lm, i / FPS)
    np.testing.assert_allclose(n.shape, neutral, atol=1e-9)
    np.testing.assert_allclose(n.rotation, frame.rotation, atol=1e-9)
    np.testing.assert_allclose(n.translation, frame.translation, atol=1e-9)
    assert n.scale == pytest.approx(frame.scale)
    assert n.frames == 5 and not cal.done


def test_mouth_opened_during_part_of_the_window_gives_a_closed_mouth_neutral(face):
    lm, frame, neutral, opened = face
    rng = np.random.default_rng(0)
    n_frames = 31
    open_frames = set(rng.choice(n_frames, 13, replace=False).tolist())  # 42 % of the window
    open_frames.add(0)  # the very first frame is one of them
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(n_frames):
        src = opened if i in open_frames else lm
        n = cal.add(src + rng.normal(0, 0.2, lm.shape), i / FPS)
    assert cal.done
    closed_gap = G.mouth_opening(neutral)
    open_gap = G.mouth_opening(frame.invert_points(opened))
    assert open_gap > 2.5 * closed_gap  # the test face really opens its mouth
    assert abs(G.mouth_opening(n.shape) - closed_gap) < 0.1 * (open_gap - closed_gap)
    err = np.linalg.norm(n.shape - neutral, axis=1)
    assert err.max() < 0.03  # whole face, chin included (canonical units)
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(n.rotation @ frame.rotation.T))) < 0.5


def test_mouth_open_in_most_of_the_window_still_gives_a_consistent_neutral(face):
    """A talking driver: the whole lower face of the neutral must be the closed one, not only
    the lips."""
    lm, frame, neutral, opened = face
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(31):
        n = cal.add(opened if i % 5 in (0, 1, 2) else lm, i / FPS)  # 60 % open
    assert abs(G.mouth_opening(n.shape) - G.mouth_opening(neutral)) < 0.02
    assert np.linalg.norm(n.shape[T.CHIN] - neutral[T.CHIN]) < 0.05


@pytest.mark.parametrize("closed_at", [(0, 1, 2), (0, 1), (12, 20, 27)])
def test_a_driver_talking_through_the_window_gets_the_closed_mouth_of_its_few_closed_frames(face, closed_at):
    """d10 talks from her second frame on: her lips meet in 2 of the window's 30 frames, and
    the other openings spread from a little to wide. The neutral is the closed mouth those few
    frames show (within CLOSED_MARGIN), not the median of a share of the window (a quarter gave
    a mouth parted by 0.06 interoculars, which every later opening then lost)."""
    lm, frame, neutral, _ = face
    bs = Blendshapes(neutral)
    rng = np.random.default_rng(2)
    openings = rng.uniform(0.25, 1.0, 31)    # jaw_open: 0.25 parts the lips clearly
    openings[[4, 8, 15, 19, 23, 29]] = 0.1    # and six frames just apart: they outnumber the closed
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(31):
        shape = neutral if i in closed_at else neutral + bs({"jaw_open": float(openings[i])})
        n = cal.add(frame.apply(shape) + rng.normal(0, 0.2, lm.shape), i / FPS)
    assert cal.done
    iod = G.interocular(neutral)
    least = G.mouth_opening(frame.invert_points(frame.apply(neutral + bs({"jaw_open": 0.1}))))
    assert 0.025 * iod < least - G.mouth_opening(neutral) < 0.04 * iod    # just over CLOSED_MARGIN
    assert abs(G.mouth_opening(n.shape) - G.mouth_opening(neutral)) < 0.01 * iod
    assert np.linalg.norm(n.shape[T.CHIN] - neutral[T.CHIN]) < 0.01 * iod


def test_first_frame_is_not_trusted_alone(face):
    lm, frame, neutral, opened = face
    cal = NeutralCalibrator(window_s=1.0)
    first = cal.add(opened, 0.0)
    first_shape = first.shape.copy()
    assert first.frames == 1 and not cal.done
    assert G.mouth_opening(first_shape) > 2 * G.mouth_opening(neutral)
    n = first
    for i in range(1, 4):
        n = cal.add(lm, i / FPS)
        assert not cal.done
    assert n.frames == 4
    assert not np.allclose(n.shape, first_shape)  # re-estimated from every frame so far
    assert G.mouth_opening(n.shape) == pytest.approx(G.mouth_opening(neutral), abs=1e-9)


def test_frozen_after_the_window(face):
    lm, frame, neutral, opened = face
    cal = NeutralCalibrator(window_s=1.0)
    i = 0
    while not cal.done:
        n = cal.add(lm, i / FPS)
        i += 1
    assert i == 31  # t = 30/30 s = window_s ends it
    frozen = n.shape.copy()
    for k in range(40):
        again = cal.add(opened + 30.0, (i + k) / FPS)
        assert again is n
    np.testing.assert_array_equal(n.shape, frozen)
    assert n.frames == 31


def test_max_frames_ends_the_window_and_reset_starts_over(face):
    lm, _, neutral, opened = face
    cal = NeutralCalibrator(window_s=10.0, max_frames=5)
    for i in range(5):
        cal.add(lm, i / 1000.0)
    assert cal.done and cal.neutral.frames == 5
    cal.reset()
    assert not cal.done and cal.neutral is None
    n = cal.add(opened, 0.0)
    assert n.frames == 1
    assert G.mouth_opening(n.shape) > 2 * G.mouth_opening(neutral)


def test_pose_is_the_median_pose(face):
    """A few frames in another head pose do not move the calibrated pose."""
    lm, frame, neutral, _ = face
    q = G.rotation_from_euler(25, 0, 0)
    turned = (lm - frame.translation) @ q.T + frame.translation + np.array([40.0, 0, 0])
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(31):
        cal.add(turned if i in (0, 7, 13) else lm, i / FPS)
    n = cal.neutral
    np.testing.assert_allclose(n.rotation, frame.rotation, atol=1e-9)
    np.testing.assert_allclose(n.translation, frame.translation, atol=1e-9)
    np.testing.assert_allclose(n.shape, neutral, atol=1e-9)


def _eye_gaps(shape):
    return np.array(G.eye_opening(shape))


def test_the_neutral_eyes_are_the_usual_open_ones_not_the_closed_mouth_frames(face):
    """A talker's closed-mouth frames caught squinting, and blinks and winks in most of the
    rest: the mouth comes from the closed-mouth frames, the eyes from the open-eyed ones only."""
    lm, frame, neutral, _ = face
    bs = Blendshapes(neutral)
    squint_closed = frame.apply(neutral + bs({"blink_right": 0.45, "blink_left": 0.45}))
    talking = frame.apply(neutral + bs({"jaw_open": 0.8}))
    blinking = frame.apply(neutral + bs({"jaw_open": 0.8, "blink_right": 1.0, "blink_left": 1.0}))
    winking = frame.apply(neutral + bs({"jaw_open": 0.8, "blink_right": 1.0}))
    cycle = (squint_closed, blinking, winking, talking)      # the open-eyed frames a quarter
    rng = np.random.default_rng(1)
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(31):
        n = cal.add(cycle[i % 4] + rng.normal(0, 0.1, lm.shape), i / FPS)
    assert cal.done
    usual, squint = _eye_gaps(neutral), _eye_gaps(frame.invert_points(squint_closed))
    assert (squint < 0.8 * usual).all()                                   # the squint is real
    assert np.abs(_eye_gaps(n.shape) - usual).max() < 0.1 * (usual - squint).min()
    assert G.mouth_opening(n.shape) < 1.2 * G.mouth_opening(neutral) + 0.01   # mouth still closed


@pytest.mark.parametrize("open_frames", [2, 3])
def test_too_few_open_eyed_frames_leave_the_eyes_to_the_closed_mouth_frames(face, open_frames):
    lm, frame, neutral, _ = face
    bs = Blendshapes(neutral)
    squint = frame.apply(neutral + bs({"blink_right": 0.45, "blink_left": 0.45}))
    talking = frame.apply(neutral + bs({"jaw_open": 0.8}))
    cal = NeutralCalibrator(window_s=1.0)
    for i, src in enumerate([squint] * 3 + [talking] * open_frames):
        n = cal.add(src, i / FPS)
    got = _eye_gaps(n.shape)
    if open_frames < 3:                                                  # the squinting frames' eyes
        np.testing.assert_allclose(got, _eye_gaps(G.face_frame(squint).invert_points(squint)), atol=1e-9)
    else:                                                                # the open ones'
        np.testing.assert_allclose(got, _eye_gaps(G.face_frame(talking).invert_points(talking)), atol=1e-9)


def _looking(frame, neutral, shift_r, shift_l=None):
    """Landmarks of `neutral` (canonical) posed by `frame` with each iris moved sideways by
    `shift_*` eye widths (+: towards the subject's left); shift_l defaults to shift_r (a look)."""
    from realtime.face.calibrate import _move_gaze

    shape = np.array(neutral, copy=True)
    _move_gaze(shape, (shift_r, shift_r if shift_l is None else shift_l))
    return frame.apply(shape)


def test_a_first_second_spent_looking_aside_does_not_set_the_gaze(face):
    """A driver who looks aside through the first second (d0) and then at the camera: during the
    window the shared sideways gaze is held within GAZE_REST; after GAZE_S of frames it is the
    camera look's, and the rest of the face stayed frozen at the window's."""
    from realtime.face import calibrate as C

    lm, frame, neutral, _ = face
    rest = C.gaze(neutral)
    assert abs(rest.mean()) < 0.5 * C.GAZE_REST           # the astronaut looks at the camera
    aside = _looking(frame, neutral, 0.15)
    cal = NeutralCalibrator(window_s=1.0)
    i = 0
    while not cal.done:
        n = cal.add(aside, i / FPS)
        i += 1
    windowed = n.shape.copy()
    assert C.gaze(windowed).mean() == pytest.approx(C.GAZE_REST, abs=1e-9)
    np.testing.assert_allclose(C.gaze(windowed) - C.gaze(windowed).mean(), rest - rest.mean(), atol=1e-9)
    while i / FPS < C.GAZE_S + 0.5:
        n = cal.add(lm, i / FPS)
        i += 1
    np.testing.assert_allclose(C.gaze(n.shape), rest, atol=1e-9)
    others = np.setdiff1d(np.arange(len(neutral)), C._IRIS_POINTS)
    np.testing.assert_array_equal(n.shape[others], windowed[others])


def test_the_gaze_is_refined_from_open_eyed_frames_only_and_for_gaze_s(face):
    from realtime.face import calibrate as C

    lm, frame, neutral, _ = face
    bs = Blendshapes(neutral)
    blink_aside = _looking(frame, neutral + bs({"blink_right": 1.0, "blink_left": 1.0}), 0.04)
    cal = NeutralCalibrator(window_s=1.0)
    i = 0
    while not cal.done:
        cal.add(lm, i / FPS)
        i += 1
    settled = cal.neutral
    for _ in range(45):                                     # shut eyes: their irises do not count
        cal.add(blink_aside, i / FPS)
        i += 1
    assert cal.neutral is settled
    late = _looking(frame, neutral, 0.04)                   # open, but after GAZE_S
    for k in range(60):
        cal.add(late, C.GAZE_S + k / FPS)
    assert cal.neutral is settled


def test_the_eyes_convergence_is_kept_and_a_pinned_face_is_kept_as_it_is(face):
    from realtime.face import calibrate as C

    lm, frame, neutral, _ = face
    rest = C.gaze(neutral)
    near = _looking(frame, neutral, -0.06, 0.06)            # both irises towards the nose
    cal = NeutralCalibrator(window_s=1.0)
    for i in range(31):
        n = cal.add(near, i / FPS)
    np.testing.assert_allclose(C.gaze(n.shape), rest + [-0.06, 0.06], atol=1e-9)
    aside = _looking(frame, neutral, 0.2)
    pinned = NeutralCalibrator().pin(aside)
    np.testing.assert_allclose(C.gaze(pinned.shape), rest + 0.2, atol=1e-9)


def test_a_driver_who_looks_aside_throughout_is_held_near_the_camera_and_the_gaze_never_jumps(face):
    """Aside through the window and a second after it: the neutral's shared sideways gaze stays
    at GAZE_REST. Then at the camera: it comes back at most GAZE_RATE a frame (the median turning
    from one cluster of looks to the other in one frame must not snap the avatar's irises), and
    the refinement runs GAZE_S from the window's end (a 2 s window), not from its start."""
    from realtime.face import calibrate as C

    lm, frame, neutral, _ = face
    rest = C.gaze(neutral)
    aside = _looking(frame, neutral, 0.15)
    cal = NeutralCalibrator(window_s=2.0)
    i = 0
    while not cal.done:
        cal.add(aside, i / FPS)
        i += 1
    done_at = i / FPS
    while i / FPS < done_at + 1.0:
        n = cal.add(aside, i / FPS)
        i += 1
    assert C.gaze(n.shape).mean() == pytest.approx(C.GAZE_REST, abs=1e-9)
    steps = []
    while i / FPS < done_at + C.GAZE_S - 1.0 / FPS:    # the camera, for the rest of GAZE_S
        before = C.gaze(cal.neutral.shape)
        n = cal.add(lm, i / FPS)
        steps.append(np.abs(C.gaze(n.shape) - before).max())
        i += 1
    assert max(steps) <= C.GAZE_RATE + 1e-12
    np.testing.assert_allclose(C.gaze(n.shape), rest, atol=1e-9)
