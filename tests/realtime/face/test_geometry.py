"""realtime.face.geometry: Euler angles, Umeyama, rotation vectors, the face frame, openings."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.geometry import Similarity


def _rx(d):
    a = np.radians(d)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _ry(d):
    a = np.radians(d)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rz(d):
    a = np.radians(d)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


# ---------------------------------------------------------------------------------- euler
def test_rotation_from_euler_axes_and_order():
    np.testing.assert_allclose(G.rotation_from_euler(30, 0, 0), _ry(30), atol=1e-12)
    np.testing.assert_allclose(G.rotation_from_euler(0, 20, 0), _rx(20), atol=1e-12)
    np.testing.assert_allclose(G.rotation_from_euler(0, 0, -15), _rz(-15), atol=1e-12)
    np.testing.assert_allclose(G.rotation_from_euler(25, -10, 40), _rz(40) @ _ry(25) @ _rx(-10),
                               atol=1e-12)


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    for yaw, pitch, roll in rng.uniform([-85, -170, -170], [85, 170, 170], size=(200, 3)):
        r = G.rotation_from_euler(yaw, pitch, roll)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        np.testing.assert_allclose(G.euler_from_rotation(r), (yaw, pitch, roll), atol=1e-8)


def test_euler_from_rotation_of_a_pure_yaw_is_only_yaw():
    y, p, r = G.euler_from_rotation(_ry(-35))
    assert (y, p, r) == pytest.approx((-35, 0, 0), abs=1e-9)


# -------------------------------------------------------------------------------- umeyama
def test_umeyama_is_exact_on_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(40, 3)) * 50
    for _ in range(10):
        rot = _random_rotation(rng)
        s = rng.uniform(0.3, 3.0)
        t = rng.normal(size=3) * 100
        fit = G.umeyama(src, s * src @ rot.T + t)
        np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
        assert fit.scale == pytest.approx(s, rel=1e-10)
        np.testing.assert_allclose(fit.translation, t, atol=1e-8)


def test_umeyama_weights_ignore_zero_weight_points():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    rot = G.rotation_from_euler(20, -30, 10)
    dst = 2.0 * src @ rot.T + np.array([5.0, -3.0, 1.0])
    dst[:5] += rng.normal(size=(5, 3)) * 10  # outliers
    w = np.ones(30)
    w[:5] = 0
    fit = G.umeyama(src, dst, weights=w)
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
    assert fit.scale == pytest.approx(2.0)
    unweighted = G.umeyama(src, dst)
    assert np.abs(unweighted.rotation - rot).max() > 1e-3  # the weights did matter


def test_umeyama_is_least_squares_with_noise():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(200, 3))
    rot = G.rotation_from_euler(-10, 5, 30)
    dst = 1.5 * src @ rot.T + 2.0 + rng.normal(size=(200, 3)) * 0.01
    fit = G.umeyama(src, dst)
    resid = ((fit.apply(src) - dst) ** 2).sum()
    for delta in (G.rotation_from_euler(0.2, 0, 0), G.rotation_from_euler(0, 0, -0.2)):
        other = Similarity(delta @ fit.rotation, fit.scale, fit.translation)
        assert ((other.apply(src) - dst) ** 2).sum() > resid
    for ds in (0.99, 1.01):
        other = Similarity(fit.rotation, fit.scale * ds, fit.translation)
        assert ((other.apply(src) - dst) ** 2).sum() > resid


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(4)
    src = rng.normal(size=(20, 3))
    dst = src * np.array([-1.0, 1.0, 1.0])  # a mirror image
    fit = G.umeyama(src, dst)
    assert np.linalg.det(fit.rotation) == pytest.approx(1.0)


def test_umeyama_without_scale_and_bad_shapes():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(20, 3))
    rot = G.rotation_from_euler(10, 20, 30)
    fit = G.umeyama(src, 3.0 * src @ rot.T, with_scale=False)
    assert fit.scale == 1.0
    np.testing.assert_allclose(fit.rotation, rot, atol=1e-10)
    with pytest.raises(ValueError):
        G.umeyama(src, src[:10])
    with pytest.raises(ValueError):
        G.umeyama(src[:, :2], src[:, :2])


def test_similarity_apply_and_invert_are_inverses():
    rng = np.random.default_rng(6)
    sim = Similarity(_random_rotation(rng), 2.5, rng.normal(size=3))
    pts = rng.normal(size=(10, 3))
    np.testing.assert_allclose(sim.invert_points(sim.apply(pts)), pts, atol=1e-12)
    np.testing.assert_allclose(sim.apply(pts), 2.5 * pts @ sim.rotation.T + sim.translation)


# ----------------------------------------------------------------------------- rotvecs
def test_rotvec_round_trip():
    rng = np.random.default_rng(7)
    for _ in range(100):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        v = axis * rng.uniform(0, np.pi - 1e-3)
        np.testing.assert_allclose(G.rotvec_from_matrix(G.matrix_from_rotvec(v)), v, atol=1e-9)
    np.testing.assert_array_equal(G.rotvec_from_matrix(np.eye(3)), np.zeros(3))
    np.testing.assert_array_equal(G.matrix_from_rotvec(np.zeros(3)), np.eye(3))
    np.testing.assert_allclose(G.matrix_from_rotvec(np.radians([0, 30, 0])), _ry(30), atol=1e-12)


@pytest.mark.parametrize("axis", [(1.0, 0.0, 0.0), (0.6, -0.8, 0.0), (0.0, 0.0, 1.0),
                                  (0.48, 0.6, -0.64)])
def test_rotvec_at_half_turn(axis):
    rot = G.matrix_from_rotvec(np.array(axis) * np.pi)
    np.testing.assert_allclose(G.matrix_from_rotvec(G.rotvec_from_matrix(rot)), rot, atol=1e-6)


def test_rotvec_at_half_turn_about_an_axis_in_the_yz_plane():
    rot = G.matrix_from_rotvec(np.array([0.0, 0.6, -0.8]) * np.pi)
    np.testing.assert_allclose(G.matrix_from_rotvec(G.rotvec_from_matrix(rot)), rot, atol=1e-6)


# -------------------------------------------------------------------------------- face frame
def test_face_frame_axes_units_and_origin(astronaut_landmarks):
    lm = astronaut_landmarks
    frame = G.face_frame(lm)
    r = frame.rotation
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    canon = frame.invert_points(lm)
    rigid = canon[list(T.RIGID)]
    np.testing.assert_allclose(rigid.mean(0), 0.0, atol=1e-9)
    assert np.sqrt((rigid ** 2).sum(1).mean()) == pytest.approx(1.0)
    # x: subject's right -> left (image left -> right for a frontal face); y: forehead -> chin
    assert canon[263, 0] - canon[33, 0] > 0.5
    assert canon[T.CHIN, 1] - canon[T.FOREHEAD, 1] > 1.5
    # y is chin - forehead made orthogonal to x, so that vector lies in the x-y plane
    assert canon[T.CHIN, 2] == pytest.approx(canon[T.FOREHEAD, 2], abs=1e-9)
    # the astronaut looks at the camera: the frame is close to the camera axes
    assert np.degrees(np.linalg.norm(G.rotvec_from_matrix(r))) < 20
    assert canon[T.NOSE_TIP, 2] < canon[234, 2]  # the nose is nearer than the cheek side


def test_face_frame_follows_a_similarity(astronaut_landmarks):
    """Canonical coordinates do not depend on head pose, distance or position."""
    lm = astronaut_landmarks
    frame = G.face_frame(lm)
    for yaw, pitch, roll in ((30, 0, 0), (-20, 25, 10), (5, -30, -35)):
        q = G.rotation_from_euler(yaw, pitch, roll)
        moved = 0.7 * (lm - 200.0) @ q.T + np.array([50.0, -20.0, 3.0])
        f2 = G.face_frame(moved)
        np.testing.assert_allclose(f2.rotation, q @ frame.rotation, atol=1e-9)
        assert f2.scale == pytest.approx(0.7 * frame.scale)
        np.testing.assert_allclose(f2.invert_points(moved), frame.invert_points(lm), atol=1e-9)


def test_face_frame_of_a_mirrored_face(astronaut_landmarks):
    """A face and its mirror image (relabelled with MIRROR) get mirrored canonical shapes."""
    lm = np.asarray(astronaut_landmarks)
    mirrored = (lm * np.array([-1.0, 1.0, 1.0]))[T.MIRROR]
    a = G.face_frame(lm).invert_points(lm)
    b = G.face_frame(mirrored).invert_points(mirrored)
    np.testing.assert_allclose(b, (a * np.array([-1.0, 1.0, 1.0]))[T.MIRROR], atol=1e-9)


# ---------------------------------------------------------------------------------- openings
def test_openings_and_interocular_on_a_synthetic_face():
    lm = np.zeros((T.N_LANDMARKS, 3))
    for k, (a, b) in enumerate(T.MOUTH_GAP_PAIRS):
        lm[a] = (10.0 * k, 100.0, 0.0)
        lm[b] = (10.0 * k, 100.0 + 2.0 * (k + 1), 50.0)  # z is ignored
    for a, b in T.RIGHT_EYE_GAP_PAIRS:
        lm[a], lm[b] = (0.0, 0.0, 0.0), (0.0, 3.0, 0.0)
    for a, b in T.LEFT_EYE_GAP_PAIRS:
        lm[a], lm[b] = (0.0, 0.0, 0.0), (4.0, 0.0, 0.0)
    lm[33] = (0.0, 50.0, 0.0)
    lm[263] = (30.0, 90.0, 9.0)
    assert G.mouth_opening(lm) == pytest.approx(4.0)
    assert G.eye_opening(lm) == pytest.approx((3.0, 4.0))
    assert G.interocular(lm) == pytest.approx(50.0)


def test_openings_on_the_astronaut(astronaut_landmarks):
    lm = astronaut_landmarks
    iod = G.interocular(lm)
    assert 40 < iod < 90
    right, left = G.eye_opening(lm)
    assert 0.1 * iod < right < 0.4 * iod and 0.1 * iod < left < 0.4 * iod
    assert G.mouth_opening(lm) < 0.3 * iod
