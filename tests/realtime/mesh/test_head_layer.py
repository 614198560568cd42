"""realtime.mesh.head_layer: the 2-D hair/head/background layer around the face mesh."""
from __future__ import annotations

import numpy as np
import pytest

from kernels import rasterize
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.geometry import Similarity
from realtime.face.state import FaceState
from realtime.mesh import head_layer as H
from realtime.mesh.fuse import MAX_HEAD_ANGLE, Recombiner


@pytest.fixture(scope="module")
def layer_setup(astronaut_landmarks):
    lm = np.array(astronaut_landmarks)
    frame = G.face_frame(lm)
    neutral = frame.invert_points(lm)
    centre, side = H.crop_box(neutral, frame)
    size = 256
    a = H.crop_affine(centre, side, size)
    layer = H.build(neutral, frame, a, size)
    return lm, frame, neutral, a, size, layer


def _to_crop(a, pts):
    return pts[:, :2] @ a[:, :2].T + a[:, 2]


def _image_vertices(layer, lm, frame, posed=None):
    """The layer's vertices in its own order (oval, rings, border), image pixels."""
    posed = posed or frame
    oval = posed.apply(frame.invert_points(lm)[list(T.FACE_OVAL)])[:, :2]
    rings = H.pose_points(layer, frame, posed)[:, :2]
    return np.concatenate([oval, rings, layer.border])


def test_crop_affine_maps_the_box_onto_the_crop():
    a = H.crop_affine(np.array([100.0, 50.0]), 200.0, 256)
    np.testing.assert_allclose(_to_crop(a, np.array([[100.0, 50.0], [0.0, -50.0], [200.0, 150.0]])),
                               [[128, 128], [0, 0], [256, 256]])


def test_crop_box_holds_ring_3_with_a_margin(layer_setup):
    lm, frame, neutral, a, size, layer = layer_setup
    crop = _to_crop(a, frame.apply(layer.points))
    assert crop.min() > 0 and crop.max() < size - 1
    # and it is not needlessly large: ring 3 reaches within the margin of an edge
    centre_dist = np.abs(crop - size / 2).max()
    assert centre_dist > size / 2 / 1.12 - 2
    # the whole face is inside too
    face = _to_crop(a, lm)
    assert face.min() > 0 and face.max() < size - 1


def test_layer_structure(layer_setup):
    lm, frame, neutral, a, size, layer = layer_setup
    n_oval = len(T.FACE_OVAL)
    k = len(layer.points)
    assert k == 2 * n_oval and layer.gains.shape == (k,)
    assert layer.border.shape == (4 * H.BORDER_POINTS_PER_SIDE, 2)
    assert layer.vertex_count() == n_oval + k + len(layer.border)
    assert layer.triangles.dtype == np.int32 and layer.triangles.shape[1] == 3
    assert layer.triangles.min() >= 0 and layer.triangles.max() < layer.vertex_count()
    # no triangle made only of face-oval points: the face mesh covers those
    assert not (layer.triangles < n_oval).all(1).any()
    # ring 2 follows the head rigidly above the chin; ring 3 follows partly; the neck least
    ring2, ring3 = layer.gains[:n_oval], layer.gains[n_oval:]
    assert ring2.max() == 1.0 and ring3.max() == pytest.approx(H.RING3_GAIN)
    below = layer.points[n_oval:, 1] > neutral[T.CHIN, 1]
    assert below.any() and (ring3[below] <= H.NECK_GAIN).all()
    assert (ring2 >= ring3).all()
    # rings lie outside the face oval, further out for ring 3
    oval = neutral[list(T.FACE_OVAL)]
    c = oval.mean(0)
    r_oval = np.linalg.norm((oval - c)[:, :2], axis=1)
    r2 = np.linalg.norm((layer.points[:n_oval] - c)[:, :2], axis=1)
    r3 = np.linalg.norm((layer.points[n_oval:] - c)[:, :2], axis=1)
    assert (r2 > r_oval).all() and (r3 > r2).all()


def test_border_points_are_on_the_crop_border(layer_setup):
    """The fixed points outline a square that holds every crop pixel centre."""
    lm, frame, neutral, a, size, layer = layer_setup
    crop = _to_crop(a, layer.border)
    lo, hi = crop.min(0), crop.max(0)
    assert (lo <= 0.0).all() and (hi >= size - 1).all()
    assert (lo > -1.0).all() and (hi < size).all()
    assert lo[0] == pytest.approx(lo[1]) and hi[0] == pytest.approx(hi[1])
    on_edge = (np.isclose(crop, lo, atol=1e-6) | np.isclose(crop, hi, atol=1e-6)).any(1)
    assert on_edge.all()
    for corner in ([lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]):
        assert np.isclose(crop, corner, atol=1e-6).all(1).any()
    per_side = [np.isclose(crop[:, 1], lo[1], atol=1e-6).sum(), np.isclose(crop[:, 0], hi[0], atol=1e-6).sum()]
    assert min(per_side) >= 3  # several points per side, so the seam follows the crop edge


def test_triangles_tile_the_crop_around_the_face(layer_setup):
    """The layer's triangles plus the face oval polygon tile the crop square without overlap:
    their areas add up to the square's."""
    lm, frame, neutral, a, size, layer = layer_setup
    v = _to_crop(a, np.column_stack([_image_vertices(layer, lm, frame), np.zeros(layer.vertex_count())]))
    t = layer.triangles
    e1, e2 = v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum()
    oval = v[: len(T.FACE_OVAL)]
    x, y = oval[:, 0], oval[:, 1]
    oval_area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    border = v[-len(layer.border):]
    side = border.max(0) - border.min(0)
    assert area + oval_area == pytest.approx(side[0] * side[1], rel=1e-6)


def test_pose_points_rest_and_motion(layer_setup):
    lm, frame, neutral, a, size, layer = layer_setup
    np.testing.assert_allclose(H.pose_points(layer, frame, frame), frame.apply(layer.points))
    q = G.rotation_from_euler(0, 0, 20)
    posed = Similarity(q @ frame.rotation, frame.scale, frame.translation + np.array([15.0, 0, 0]))
    moved = H.pose_points(layer, frame, posed)
    rest = frame.apply(layer.points)
    full = posed.apply(layer.points)
    np.testing.assert_allclose(moved - rest, layer.gains[:, None] * (full - rest), atol=1e-9)


def _render_layer(layer, lm, frame, a, size, posed=None):
    """Face mesh + layer rasterized into the crop (face in front)."""
    posed = posed or frame
    canon = frame.invert_points(lm)
    face = posed.apply(canon)
    verts = np.zeros((T.N_LANDMARKS + layer.vertex_count(), 3), np.float32)
    verts[: T.N_LANDMARKS, :2] = _to_crop(a, face)
    verts[: T.N_LANDMARKS, 2] = face[:, 2]
    lay = _image_vertices(layer, lm, frame, posed)
    verts[T.N_LANDMARKS:, :2] = _to_crop(a, np.column_stack([lay, np.zeros(len(lay))]))
    verts[T.N_LANDMARKS:, 2] = 1e4
    remap = np.concatenate([np.asarray(T.FACE_OVAL),
                            T.N_LANDMARKS + len(T.FACE_OVAL) + np.arange(len(layer.points) + len(layer.border))])
    tris = np.concatenate([T.face_triangles(), T.eye_fans(468, 473),
                           remap[layer.triangles]]).astype(np.int32)
    # mouth hole: fan from the upper-lip centre (the astronaut's lips are parted)
    tris = np.concatenate([tris, T.mouth_fan(13)]).astype(np.int32)
    return rasterize(verts, tris, size, size)


@pytest.mark.parametrize("yaw", [0.0, 35.0, -35.0])
def test_layer_and_face_cover_the_crop_interior(layer_setup, yaw):
    lm, frame, neutral, a, size, layer = layer_setup
    posed = Similarity(G.rotation_from_euler(yaw, 0, 0) @ frame.rotation, frame.scale,
                       frame.translation)
    gbuf = _render_layer(layer, lm, frame, a, size, posed)
    assert (gbuf.tri_id[: size - 1, : size - 1] >= 0).all()


def test_layer_covers_the_whole_crop(layer_setup):
    lm, frame, neutral, a, size, layer = layer_setup
    gbuf = _render_layer(layer, lm, frame, a, size)
    assert (gbuf.tri_id >= 0).all()


def _signed_areas(layer, verts):
    p = verts[layer.triangles]
    d1, d2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    return d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]


@pytest.mark.parametrize("angles", [(0, 0, 90), (0, 0, -90), (80, 0, 0), (0, -70, 0), (50, 50, 60)])
def test_a_pose_past_the_limit_is_clamped_and_does_not_tear(layer_setup, angles):
    """Issue #15: a 90° roll tore the head layer. The fuse's pose is clamped to MAX_HEAD_ANGLE
    (same axis): finite, within the limit, and no head-layer triangle folds over."""
    lm, frame, neutral, a, size, layer = layer_setup
    rest = _signed_areas(layer, _image_vertices(layer, lm, frame))
    raw = Similarity(G.rotation_from_euler(*angles) @ frame.rotation, frame.scale, frame.translation)
    torn = _signed_areas(layer, _image_vertices(layer, lm, frame, raw))
    assert (np.sign(torn) != np.sign(rest)).any()   # unclamped, it does tear
    posed = Recombiner(neutral, frame).pose(FaceState(rotation=G.rotation_from_euler(*angles)))
    rel = posed.rotation @ frame.rotation.T
    angle = np.degrees(np.linalg.norm(G.rotvec_from_matrix(rel)))
    assert angle == pytest.approx(MAX_HEAD_ANGLE)
    axis = G.rotvec_from_matrix(G.rotation_from_euler(*angles))
    np.testing.assert_allclose(G.rotvec_from_matrix(rel) / np.radians(angle), axis / np.linalg.norm(axis),
                               atol=1e-9)   # same axis
    verts = _image_vertices(layer, lm, frame, posed)
    assert np.isfinite(verts).all()
    assert (np.sign(_signed_areas(layer, verts)) == np.sign(rest)).all()


def test_a_pose_within_the_limit_is_untouched(layer_setup):
    lm, frame, neutral, a, size, layer = layer_setup
    rot = G.rotation_from_euler(20, -10, 15)
    posed = Recombiner(neutral, frame).pose(FaceState(rotation=rot))
    np.testing.assert_array_equal(posed.rotation, rot @ frame.rotation)
