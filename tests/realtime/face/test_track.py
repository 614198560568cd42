"""realtime.face.track: what the track stage skips, the one-line error without mediapipe, and the
astronaut's landmarks kept in tests/data for runs without mediapipe."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from realtime.core.errors import PuppeteerError
from realtime.core.frame import Frame
from realtime.face import track


def test_stage_skips_scripted_imageless_and_tracked_frames():
    stage = track.TrackStage()
    lm = np.ones((478, 3), np.float32)
    for frame in (Frame(index=0, t_capture=0.0, state=object()),
                  Frame(index=1, t_capture=0.0),
                  Frame(index=2, t_capture=0.0, image=np.zeros((8, 8, 3), np.uint8), landmarks=lm,
                        tracked=True)):
        stage(frame)
    assert stage.tracker is None     # MediaPipe never loaded
    assert frame.landmarks is lm


def test_without_mediapipe_tracking_is_one_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)   # `import mediapipe` now fails
    with pytest.raises(track.TrackerUnavailable) as info:
        track.Tracker()
    assert isinstance(info.value, PuppeteerError)
    assert "mediapipe" in str(info.value) and "track.npz" in str(info.value)
    with pytest.raises(track.TrackerUnavailable):
        track.find_face_boxes(np.zeros((8, 8, 3), np.uint8))
    stage = track.TrackStage()
    with pytest.raises(track.TrackerUnavailable):
        stage(Frame(index=0, t_capture=0.0, image=np.zeros((8, 8, 3), np.uint8)))


@pytest.mark.tracking
def test_astronaut_landmarks_copy_is_current(astronaut_rgb):
    """tests/data/astronaut_landmarks.npy (the fixture's landmarks where mediapipe is absent) is
    what MediaPipe finds on the astronaut."""
    from profiles.enroll import detect_single_face
    from tests.conftest import ASTRONAUT_LANDMARKS

    copy = np.load(ASTRONAUT_LANDMARKS, allow_pickle=False)
    np.testing.assert_allclose(detect_single_face(astronaut_rgb, "astronaut"), copy, atol=1e-3)
