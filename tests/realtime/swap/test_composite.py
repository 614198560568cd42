"""realtime.swap.composite.eye_sources: where the swap's eye openings take the driver's pixels
from. Inside both openings the driver's eye comes whole (a similarity from the identity's iris and
eye axis to the driver's: a round iris stays round, its gaze is the identity's posed iris); what
reaches past the driver's lids is kept inside the driver's opening (no lid skin in the eye)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.swap.composite import eye_sources


def almond(a, b, height: float, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """The (upper, lower) lid lines (n, 2) of an eye from corner `a` to corner `b`, `height` px
    from the corner line to each lid at the middle (image y down)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    axis = b - a
    down = np.array([-axis[1], axis[0]]) / np.linalg.norm(axis)
    s = np.linspace(0.0, 1.0, n)
    along = a + s[:, None] * axis
    bulge = (height * np.sin(np.pi * s))[:, None]
    return along - bulge * down, along + bulge * down


def rotated(points, centre, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (np.asarray(points, np.float64) - centre) @ r.T + centre


def inside_opening(points, upper, lower) -> np.ndarray:
    """(K,) the signed distance (px, + inside) of each point to the opening between the lids."""
    poly = np.concatenate([upper, lower[::-1]]).astype(np.float32)
    return np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in points])


@pytest.mark.parametrize("roll", [0.0, 25.0])
def test_a_narrow_identitys_eye_shows_the_drivers_iris_round_where_its_own_iris_is(roll):
    # a narrow identity's eye (crop px, 40 wide, 5 high), a wide-open driver's (frame px, 20
    # wide, 8 high), the driver's head rolled
    corners = np.array([[10.0, 50.0], [50.0, 50.0]])
    iris = np.array([31.0, 48.5])
    centre = np.array([110.0, 200.0])
    d_corners = rotated([[100.0, 200.0], [120.0, 200.0]], centre, roll)
    upper, lower = (rotated(line, centre, roll) for line in almond([100.0, 200.0], [120.0, 200.0], 8.0))
    d_iris = rotated([[111.0, 197.0]], centre, roll)[0]
    ring = iris + 4.0 * np.column_stack([np.cos(np.linspace(0, 2 * np.pi, 12)), np.sin(np.linspace(0, 2 * np.pi, 12))])
    got = eye_sources(ring, iris, corners, d_iris, d_corners, upper, lower)
    # the identity's iris shows the driver's, at half the size (the eyes' width ratio), turned as
    # the driver's eye: a circle stays a circle, as tall as it is wide
    np.testing.assert_allclose(got, rotated(d_iris + 0.5 * (ring - iris), d_iris, roll), atol=1e-9)
    np.testing.assert_allclose(eye_sources(iris[None], iris, corners, d_iris, d_corners, upper, lower), [d_iris],
                               atol=1e-9)


def test_what_reaches_past_the_drivers_lids_is_taken_from_inside_its_opening():
    # a wide-open identity's eye (crop px, 40 wide, 16 high) onto a driver's nearly shut one
    corners = np.array([[10.0, 50.0], [50.0, 50.0]])
    iris = np.array([30.0, 50.0])
    own_upper, own_lower = almond(corners[0], corners[1], 16.0)
    d_corners = np.array([[100.0, 200.0], [120.0, 200.0]])
    upper, lower = almond(d_corners[0], d_corners[1], 3.0)
    rim = np.concatenate([own_upper, own_lower])
    got = eye_sources(rim, iris, corners, [110.0, 200.0], d_corners, upper, lower)
    assert np.all(inside_opening(got, upper, lower) >= -1e-6)       # no lid skin in the eye
    # the identity's lids at the middle take the driver's lids there (the opening filled)
    np.testing.assert_allclose(got[4], upper[4], atol=1e-9)
    np.testing.assert_allclose(got[9 + 4], lower[4], atol=1e-9)
    # along the eye, nothing from beyond the ends of the driver's opening
    along = got[:, 0]
    assert along.min() >= 100.0 - 1e-9 and along.max() <= 120.0 + 1e-9


def test_an_eye_without_width_takes_one_driver_pixel():
    upper, lower = almond([100.0, 200.0], [120.0, 200.0], 3.0)
    pts = np.array([[30.0, 50.0], [31.0, 52.0]])
    got = eye_sources(pts, [30.0, 50.0], [[30.0, 50.0], [30.0, 50.0]], [110.0, 200.0],
                      [[100.0, 200.0], [120.0, 200.0]], upper, lower)
    assert np.isfinite(got).all() and got.shape == (2, 2)
    np.testing.assert_allclose(got, [[100.0, 200.0]] * 2)
