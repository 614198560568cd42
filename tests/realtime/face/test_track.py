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


def test_pyplot_stand_in_reads_through_and_leaves_sys_modules_clean(monkeypatch):
    """While mediapipe loads, its `import matplotlib.pyplot` gets a stand-in (pyplot costs ~0.75 s
    of start-up); afterwards sys.modules holds no stand-in, and the stand-in reads through to the
    real pyplot. A pyplot already imported is left as it is."""
    pytest.importorskip("matplotlib")
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    with track._pyplot_deferred():
        import matplotlib.pyplot as seen  # noqa: PLC0415 - what mediapipe's import gets
        assert isinstance(seen, track._PyplotOnFirstUse)
    assert "matplotlib.pyplot" not in sys.modules
    import matplotlib.pyplot as real  # noqa: PLC0415
    assert not isinstance(real, track._PyplotOnFirstUse)
    assert seen.figure is real.figure and seen.close is real.close
    with track._pyplot_deferred():
        import matplotlib.pyplot as again  # noqa: PLC0415
    assert again is real and sys.modules["matplotlib.pyplot"] is real


@pytest.mark.tracking
def test_mediapipe_loads_without_pyplot():
    """In a fresh interpreter, loading the tracker's mediapipe imports no pyplot."""
    import subprocess  # noqa: PLC0415

    code = ("import sys; from realtime.face.track import _mediapipe; mp = _mediapipe(); "
            "print('matplotlib.pyplot' in sys.modules, type(mp.solutions.drawing_utils.plt).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert out.stdout.split() == ["False", "_PyplotOnFirstUse"]


@pytest.mark.tracking
def test_a_new_tracker_prints_nothing_native_even_before_its_first_frame():
    """Before the fix: the graph's threads printed two "W0000 ... inference_feedback_manager"
    lines ~20 ms after the constructor returned (outside its quiet block): every
    `bench --quality` showed them, its output tracker being built well before its first frame."""
    import subprocess  # noqa: PLC0415

    # then faceless frames (a warm-up), then the first face: before the fix, that call printed
    # "W0000 ... landmark_projection_calculator" (bench --streams showed it)
    code = ("import time, numpy as np, skimage.data; from realtime.face.track import Tracker; "
            "t = Tracker(static=False); time.sleep(0.5); "
            "[t(np.zeros((64, 64, 3), np.uint8)) for _ in range(4)]; "
            "assert t(skimage.data.astronaut()) is not None; time.sleep(0.3); print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert out.returncode == 0 and out.stdout == "ok\n" and out.stderr == "", out.stderr[-2000:]
