"""realtime.io.performance: blendshapes, the demo script and the scripted source."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.io.grabber import Grabber
from realtime.io.performance import Blendshapes, Keys, ScriptedSource, default_performance


@pytest.fixture(scope="module")
def neutral(astronaut_profile):
    return astronaut_profile["neutral"].astype(np.float64)


@pytest.fixture(scope="module")
def shapes(neutral):
    return Blendshapes(neutral)


def _brows(n):
    return n[list(T.RIGHT_BROW + T.LEFT_BROW), 1].mean()


def test_fields_have_the_neutral_shape_and_sum_linearly(shapes, neutral):
    assert set(shapes.fields) == set(Blendshapes.NAMES)
    for name, f in shapes.fields.items():
        assert f.shape == neutral.shape and np.isfinite(f).all() and np.abs(f).max() > 0.01, name
    np.testing.assert_array_equal(shapes({}), 0.0)
    np.testing.assert_array_equal(shapes({"smile": 0.0}), 0.0)
    np.testing.assert_allclose(shapes({"smile": 0.5, "jaw_open": 2.0}),
                               0.5 * shapes.fields["smile"] + 2.0 * shapes.fields["jaw_open"])
    with pytest.raises(KeyError):
        shapes({"wink": 1.0})


def test_jaw_open_opens_the_mouth_and_drops_the_chin(shapes, neutral):
    opened = neutral + shapes({"jaw_open": 1.0})
    assert G.mouth_opening(opened) > G.mouth_opening(neutral) + 0.3
    assert opened[T.CHIN, 1] > neutral[T.CHIN, 1] + 0.4
    np.testing.assert_array_equal(opened[list(T.RIGID)], neutral[list(T.RIGID)])
    upper = list(T.INNER_LIP_UPPER[1:-1])  # the upper lip stays, the corners move half-way
    np.testing.assert_array_equal(opened[upper], neutral[upper])
    # the lower lip drops as one piece: its inner contour never passes its outer one (a fold
    # that drew the lip over the opening and read as a closed mouth)
    f = shapes.fields["jaw_open"]
    inner, outer = list(T.INNER_LIP_LOWER[1:-1]), list(T.OUTER_LIP[11:])
    np.testing.assert_allclose(f[inner + outer, 1], 0.5)
    for w in (0.3, 1.0, 2.0):
        shape = neutral + shapes({"jaw_open": w})
        assert shape[17, 1] - shape[14, 1] == pytest.approx(neutral[17, 1] - neutral[14, 1])
    # symmetric: the mirror of the field is the field
    assert np.abs(f[T.MIRROR] - f).max() < 0.1


def test_blinks_close_one_eye_each(shapes, neutral):
    r0, l0 = G.eye_opening(neutral)
    r, l = G.eye_opening(neutral + shapes({"blink_right": 1.0}))
    assert r < 0.02 * r0 and l == pytest.approx(l0)
    r, l = G.eye_opening(neutral + shapes({"blink_left": 1.0}))
    assert l < 0.02 * l0 and r == pytest.approx(r0)
    r, l = G.eye_opening(neutral + shapes({"blink_left": 0.5, "blink_right": 0.5}))
    assert r == pytest.approx(0.5 * r0, rel=0.05) and l == pytest.approx(0.5 * l0, rel=0.05)


def test_smile_brow_raise_and_pucker(shapes, neutral):
    width = lambda n: n[291, 0] - n[61, 0]
    smile = neutral + shapes({"smile": 1.0})
    assert width(smile) > width(neutral) + 0.05
    assert smile[[61, 291], 1].mean() < neutral[[61, 291], 1].mean() - 0.02  # corners rise
    brows = neutral + shapes({"brow_raise": 1.0})
    assert _brows(brows) < _brows(neutral) - 0.1
    eyes = list(T.RIGHT_EYE_UPPER + T.LEFT_EYE_LOWER + T.RIGHT_IRIS)
    np.testing.assert_array_equal(brows[eyes], neutral[eyes])
    pucker = neutral + shapes({"pucker": 1.0})
    lips = list(T.OUTER_LIP)
    cx = neutral[lips, 0].mean()
    spread = lambda n: np.abs(n[lips, 0] - cx).mean()
    assert spread(pucker) < 0.98 * spread(neutral)  # lips gather to the centre (weakly)
    assert pucker[lips, 2].mean() < neutral[lips, 2].mean() - 0.005  # and push forward


def test_default_performance_script():
    rest = default_performance(0.0)
    assert (rest.yaw, rest.pitch, rest.roll) == (0.0, 0.0, 0.0)
    assert not any(rest.weights.values())
    assert set(rest.weights) == set(Blendshapes.NAMES)
    assert abs(default_performance(1.35).yaw) > 20       # turning
    assert abs(default_performance(3.28).pitch) > 10     # nodding
    assert default_performance(4.7).weights["smile"] > 0.9
    assert default_performance(5.8).weights["jaw_open"] > 0.9
    assert default_performance(6.525).weights["blink_left"] > 0.9
    assert default_performance(7.5).weights["brow_raise"] > 0.9
    talk = [default_performance(t).weights["jaw_open"] for t in np.arange(8.2, 10.0, 0.02)]
    assert max(talk) > 0.2 and min(talk) < 0.05  # syllables
    for t in np.linspace(0, 10, 101):
        k = default_performance(t)
        assert all(0.0 <= w <= 1.0 for w in k.weights.values())
        assert abs(k.yaw) <= 25 and abs(k.pitch) <= 15 and abs(k.roll) <= 7


def test_scripted_source_plays_the_performance(neutral):
    src = ScriptedSource(neutral, frames=11, fps=25.0, duration_s=10.0)
    assert src.fps == 25.0 and src.frame_count == 11 and not src.is_live
    states = []
    while (item := src.read()) is not None:
        assert set(item) == {"state"}
        states.append(item["state"])
    assert len(states) == 11 and src.read() is None
    assert all(isinstance(s, FaceState) and s.present for s in states)
    # frame i plays t = i / (frames - 1) * duration
    for i, s in enumerate(states):
        k = default_performance(i * 1.0)
        np.testing.assert_allclose(s.angles, (k.yaw, k.pitch, k.roll), atol=1e-9)
        np.testing.assert_allclose(s.expression, src.shapes(k.weights), atol=1e-12)
    np.testing.assert_array_equal(states[0].rotation, np.eye(3))
    src.close()


def test_scripted_source_custom_script_and_errors(neutral):
    src = ScriptedSource(neutral, frames=3, script=lambda t: Keys(yaw=t, shift_x=0.5),
                         duration_s=2.0)
    yaws = [src.read()["state"].angles[0] for _ in range(3)]
    assert yaws == pytest.approx([0.0, 1.0, 2.0])
    assert src.state_at(0.0).translation.tolist() == [0.5, 0.0, 0.0]
    one = ScriptedSource(neutral, frames=1)
    assert one.read() is not None and one.read() is None
    with pytest.raises(ValueError):
        ScriptedSource(neutral, frames=0)


def test_the_wide_open_mouth_shows_its_tongue(neutral):
    """Before: a scripted state's mouth showed neither teeth nor tongue (FaceState's 0), so the
    demo's wide-open mouth was a black void over the avatar's lower teeth. The script says what
    the open mouth shows, as a tracked driver's mouth gauge would: at its widest the tongue, in
    full (`mouth.TONGUE_GAUGE`), and none while the mouth is shut or talking."""
    from realtime.tiers.mouth import TONGUE_GAUGE

    src = ScriptedSource(neutral)
    assert src.state_at(5.8).tongue >= TONGUE_GAUGE[1]
    assert all(src.state_at(t).tongue < 1e-9 for t in (0.0, 4.7, 7.0, 8.5, 9.9))
    custom = ScriptedSource(neutral, script=lambda t: Keys(teeth=0.6, tongue=0.3)).state_at(1.0)
    assert (custom.teeth, custom.tongue) == (0.6, 0.3)


def test_scripted_source_through_a_grabber(neutral):
    src = ScriptedSource(neutral, frames=7)
    with Grabber(src, realtime=False) as g:
        frames = []
        while (f := g.get(timeout=5)) is not None:
            frames.append(f)
    assert [f.index for f in frames] == list(range(7))
    assert all(f.image is None and isinstance(f.state, FaceState) for f in frames)
