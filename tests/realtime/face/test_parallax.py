"""realtime.face.parallax: the turn-like part of an expression residual."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry, topology
from realtime.face.parallax import untwisted

_FLIP = np.array([-1.0, 1.0, 1.0])
_KEPT = np.zeros(topology.N_LANDMARKS, bool)           # the points it leaves alone: eyes and irises
_KEPT[list(topology.EYE_POINTS)] = True


def mirrored(points: np.ndarray) -> np.ndarray:
    """The face reflected about its midline plane (x → −x, each point to its mirror partner)."""
    return points[topology.MIRROR] * _FLIP


def symmetric(points: np.ndarray) -> np.ndarray:
    return 0.5 * (points + mirrored(points))


def test_a_mirror_symmetric_expression_is_kept():
    e = symmetric(np.random.default_rng(0).normal(0, 0.05, (topology.N_LANDMARKS, 3)))
    np.testing.assert_allclose(untwisted(e), e, atol=1e-15)


@pytest.mark.parametrize("yaw", [-4.0, 2.0, 6.0])
def test_a_turn_left_in_the_residual_is_taken_out(yaw):
    rng = np.random.default_rng(1)
    face = symmetric(rng.normal(0, 1, (topology.N_LANDMARKS, 3)))
    turn = face @ geometry.rotation_from_euler(yaw, 0, 0).T - face      # what a missed turn leaves
    out = untwisted(turn)
    moved = ~_KEPT
    left = np.linalg.norm(out[moved], axis=1).mean() / np.linalg.norm(turn[moved], axis=1).mean()
    assert left < 0.1 * abs(yaw) / 6.0 + 0.01            # second order in the angle: the cosine's part
    np.testing.assert_array_equal(out[:, 1], turn[:, 1])                # vertical motion untouched
    np.testing.assert_array_equal(out[_KEPT], turn[_KEPT])              # the eyes as they were


def test_a_gaze_and_a_sideways_shift_of_the_nose():
    e = np.zeros((topology.N_LANDMARKS, 3))
    e[list(topology.RIGHT_IRIS) + list(topology.LEFT_IRIS), 0] = 0.03      # both eyes look left
    e[topology.NOSE_TIP, 0] = 0.02                                        # the nose tip slides
    e[61, 0], e[topology.MIRROR[61], 0] = -0.01, 0.01                     # the mouth widens
    out = untwisted(e)
    np.testing.assert_array_equal(out[topology.N_MESH:], e[topology.N_MESH:])
    assert out[topology.NOSE_TIP, 0] == 0.0
    assert (out[61, 0], out[topology.MIRROR[61], 0]) == (-0.01, 0.01)


def test_an_asymmetric_smile_keeps_its_lift_and_halves_its_slide():
    e = np.zeros((topology.N_LANDMARKS, 3))
    e[61] = (-0.02, -0.01, 0.0)                           # one corner out and up
    out = untwisted(e)
    assert out[61, 0] == pytest.approx(-0.01) and out[topology.MIRROR[61], 0] == pytest.approx(0.01)
    assert out[61, 1] == -0.01 and out[topology.MIRROR[61], 1] == 0.0


def test_dtype_and_shape_and_the_input_is_left_alone():
    e = np.zeros((topology.N_LANDMARKS, 3), np.float32)
    assert untwisted(e).dtype == np.float32
    e64 = np.zeros((topology.N_LANDMARKS, 3))
    e64[topology.NOSE_TIP, 0] = 0.02
    out = untwisted(e64)
    assert out is not e64 and e64[topology.NOSE_TIP, 0] == 0.02 and out[topology.NOSE_TIP, 0] == 0.0
    with pytest.raises(ValueError, match=r"\(478, 3\), got \(468, 3\)"):
        untwisted(np.zeros((468, 3)))
