"""The share of the driver's open mouth that shows teeth, and the tongue's (realtime.face.teeth):
read from its own pixels inside the inner lips, smoothed over a few frames, 0 for a closed mouth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.face import topology
from realtime.face.teeth import TeethGauge, teeth_share, tongue_share


def _open(landmarks: np.ndarray, by: float = 0.12) -> np.ndarray:
    """`landmarks` with the lower lip and jaw dropped `by` interoculars (an open mouth)."""
    lm = np.array(landmarks, np.float64)
    iod = np.linalg.norm(lm[topology.EYE_OUTER[0], :2] - lm[topology.EYE_OUTER[1], :2])
    inner = list(topology.INNER_LIP_LOWER[1:-1])
    lm[inner, 1] += by * iod
    return lm


def _painted(image, lm, colour, right_half=None):
    """`image` with the inner-lip polygon of `lm` filled with `colour` (its right half with
    `right_half` when given)."""
    out = image.copy()
    poly = np.array(list(topology.INNER_LIP_UPPER) + list(topology.INNER_LIP_LOWER[-2:0:-1]))
    mask = np.zeros(out.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.rint(lm[poly, :2] * 4).astype(np.int32)], 1, shift=2)
    out[mask > 0] = colour
    if right_half is not None:
        cx = lm[poly, 0].mean()
        half = (mask > 0) & (np.arange(out.shape[1])[None, :] > cx)
        out[half] = right_half
    return out


@pytest.mark.parametrize("colour, low, high", [
    ((240, 238, 230), 0.95, 1.0),      # teeth: bright, unsaturated
    ((60, 20, 25), 0.0, 0.02),         # a dark throat
    ((200, 90, 100), 0.0, 0.02),       # a tongue: bright enough, but red
])
def test_it_reads_what_the_open_mouth_shows(astronaut_rgb, astronaut_landmarks, colour, low, high):
    lm = _open(astronaut_landmarks)
    assert low <= teeth_share(_painted(astronaut_rgb, lm, colour), lm) <= high


def test_half_teeth_read_about_half(astronaut_rgb, astronaut_landmarks):
    lm = _open(astronaut_landmarks)
    share = teeth_share(_painted(astronaut_rgb, lm, (240, 238, 230), right_half=(60, 20, 25)), lm)
    assert 0.35 <= share <= 0.65, share


def test_a_closed_mouth_reads_no_teeth(astronaut_rgb, astronaut_landmarks):
    lm = np.array(astronaut_landmarks, np.float64)
    upper, lower = list(topology.INNER_LIP_UPPER), list(topology.INNER_LIP_LOWER)
    lm[lower, :2] = lm[upper, :2]                                   # lips together
    assert teeth_share(_painted(astronaut_rgb, _open(astronaut_landmarks), (240, 238, 230)), lm) == 0.0


def test_the_gauge_smooths_and_falls_to_zero_without_a_face(astronaut_rgb, astronaut_landmarks):
    lm = _open(astronaut_landmarks)
    teeth = _painted(astronaut_rgb, lm, (240, 238, 230))
    gauge = TeethGauge()
    assert gauge(teeth, lm, 0.0) > 0.95                       # the first frame: as read
    dark = _painted(astronaut_rgb, lm, (60, 20, 25))
    after_one = gauge(dark, lm, 1 / 30)
    assert 0.3 < after_one < 0.95                             # a frame later: on its way down
    for k in range(2, 12):
        gauge(None, None, k / 30)                             # the face gone
    assert gauge.value < 0.01
    gauge.reset()
    assert gauge(teeth, lm, 5.0) > 0.95


def test_a_lost_face_s_teeth_fade_with_its_mouth(astronaut_rgb, astronaut_landmarks):
    """Before (review): the gauge fell to 0 within 3 frames of a lost face while the eased hold
    kept the mouth open for ~8, flashing a dropped jaw's dark gap mid-grin. Now the held state's
    own teeth fade with it."""
    from realtime.core.frame import Frame
    from realtime.face.estimate import EstimateStage, Estimator

    lm = _open(astronaut_landmarks)
    image = _painted(astronaut_rgb, lm, (240, 238, 230))
    stage = EstimateStage(Estimator(), clock=lambda f: f.index / 30)
    k = 0
    for k in range(10):
        stage(Frame(index=k, t_capture=k / 30, image=image, landmarks=lm))
    held = []
    for k in range(10, 20):
        frame = Frame(index=k, t_capture=k / 30, image=image, landmarks=None)
        stage(frame)
        held.append(frame.state.teeth)
    assert held[2] > 0.8 and held[-1] < 0.05 and all(a >= b for a, b in zip(held, held[1:])), held


def test_a_tracked_clip_s_share_stands_in_for_the_image(astronaut_landmarks):
    """A tracked clip without its video: the frames bring their teeth share (Frame.teeth)."""
    from realtime.core.frame import Frame
    from realtime.face.estimate import EstimateStage, Estimator

    lm = _open(astronaut_landmarks)
    stage = EstimateStage(Estimator(), clock=lambda f: f.index / 30)
    for k in range(8):
        frame = Frame(index=k, t_capture=k / 30, landmarks=lm, tracked=True, teeth=0.8)
        stage(frame)
    assert frame.state.teeth == pytest.approx(0.8, abs=0.05)


def test_the_estimate_stage_puts_the_share_in_the_state(astronaut_rgb, astronaut_landmarks):
    """The photo tiers read it from Frame.state; the swap's stage (teeth=False) leaves it 0."""
    from realtime.core.frame import Frame
    from realtime.face.estimate import EstimateStage, Estimator

    lm = _open(astronaut_landmarks)
    image = _painted(astronaut_rgb, lm, (240, 238, 230))
    for measure, expect in ((True, 1.0), (False, 0.0)):
        stage = EstimateStage(Estimator(), clock=lambda f: f.index / 30, teeth=measure)
        for k in range(8):          # the estimator believes a face after a few frames
            frame = Frame(index=k, t_capture=k / 30, image=image, landmarks=lm)
            stage(frame)
        assert frame.state.present and frame.state.teeth == pytest.approx(expect, abs=0.05)


@pytest.mark.parametrize("colour, low, high", [
    ((200, 90, 100), 0.95, 1.0),       # a lit tongue (d10's ~(205, 98, 112))
    ((240, 238, 230), 0.0, 0.02),      # teeth
    ((90, 32, 45), 0.0, 0.02),         # a dark throat (d10's, above her tongue)
    ((40, 38, 36), 0.0, 0.02),         # a grey shadow
])
def test_it_reads_the_tongue_the_open_mouth_shows(astronaut_rgb, astronaut_landmarks, colour, low, high):
    lm = _open(astronaut_landmarks)
    assert low <= tongue_share(_painted(astronaut_rgb, lm, colour), lm) <= high


def test_the_gauge_smooths_the_tongue_and_a_tracked_clip_s_stands_in(astronaut_rgb, astronaut_landmarks):
    """The estimate stage puts the tongue share in the state (FaceState.tongue) beside the
    teeth's; a tracked clip's frames bring theirs (Frame.tongue); one without reads the image."""
    from realtime.core.frame import Frame
    from realtime.face.estimate import EstimateStage, Estimator

    lm = _open(astronaut_landmarks)
    half = _painted(astronaut_rgb, lm, (240, 238, 230), right_half=(200, 90, 100))
    gauge = TeethGauge()
    gauge(half, lm, 0.0)
    assert 0.35 <= gauge.value <= 0.65 and 0.35 <= gauge.tongue <= 0.65, (gauge.value, gauge.tongue)
    gauge(_painted(astronaut_rgb, lm, (60, 20, 25)), lm, 1 / 30)
    assert 0.1 < gauge.tongue < 0.4                           # on its way down
    for tongue, image, expect in ((0.4, None, 0.4), (None, half, 0.5)):
        stage = EstimateStage(Estimator(), clock=lambda f: f.index / 30)
        for k in range(8):
            frame = Frame(index=k, t_capture=k / 30, image=image, landmarks=lm, tracked=True, teeth=0.2,
                          tongue=tongue)
            stage(frame)
        assert frame.state.teeth == pytest.approx(0.2, abs=0.02)
        assert frame.state.tongue == pytest.approx(expect, abs=0.1)
