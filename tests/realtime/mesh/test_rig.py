"""realtime.mesh.rig: a profile turned into the vertex/triangle arrays the renderer draws."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels import rasterize
from realtime.face import geometry as G
from realtime.face import topology as T
from realtime.face.state import FaceState
from realtime.mesh import rig as R
from realtime.mesh.fuse import Recombiner


@pytest.fixture(scope="module")
def rig(astronaut_profile):
    return R.build(astronaut_profile)


def _crop(a, pts):
    return pts[:, :2] @ a[:, :2].T + a[:, 2]


def test_triangle_ranges(rig, astronaut_profile):
    r = rig.ranges
    assert list(r) == ["face", "eyes", "mouth", "head"]
    assert r["face"] == (0, len(T.face_triangles()))
    assert r["eyes"][0] == r["face"][1] and r["eyes"][1] - r["eyes"][0] == len(T.eye_fans(468, 473))
    assert r["mouth"][0] == r["eyes"][1] and r["mouth"][1] - r["mouth"][0] == len(T.mouth_fan(0))
    assert r["head"][0] == r["mouth"][1] and r["head"][1] == len(rig.triangles)
    assert r["head"][1] - r["head"][0] == len(astronaut_profile["head_triangles"])
    np.testing.assert_array_equal(rig.triangles[: r["face"][1]], T.face_triangles())
    assert (rig.triangles[slice(*r["mouth"])][:, 2] == R.MOUTH_CENTRE).all()
    eyes = rig.triangles[slice(*r["eyes"])]
    assert sorted(set(eyes[:, 2].tolist())) == list(R.EYE_CENTRES)   # fans from the eye centres
    assert rig.triangles.dtype == np.int32 and rig.triangles.flags.c_contiguous
    assert rig.triangles.min() >= 0 and rig.triangles.max() < rig.vertex_count


def test_vertex_layout_and_rest_attributes(rig, astronaut_profile):
    p = astronaut_profile
    k, b = len(p["head_points"]), len(p["head_border"])
    assert rig.vertex_count == R.HEAD_START + k + b + len(T.FACE_OVAL)
    assert rig.inner_ring == slice(rig.vertex_count - len(T.FACE_OVAL), rig.vertex_count)
    att = rig.attributes
    assert att.shape == (rig.vertex_count, 4) and att.dtype == np.float32
    lm = p["landmarks"]
    np.testing.assert_allclose(att[: T.N_LANDMARKS, :2], lm[:, :2])  # texture = the photo at rest
    lips = sorted(set(T.INNER_LIP_UPPER) | set(T.INNER_LIP_LOWER))
    np.testing.assert_allclose(att[R.MOUTH_CENTRE, :2], lm[lips, :2].mean(0), rtol=1e-6)
    for centre, loop in zip(R.EYE_CENTRES, R.EYE_LOOPS):
        np.testing.assert_allclose(att[centre, :2], lm[loop, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(att[R.HEAD_START: R.HEAD_START + k, :2],
                               p.frame().apply(p["head_points"].astype(np.float64))[:, :2], rtol=1e-5)
    border = slice(R.HEAD_START + k, rig.inner_ring.start)
    np.testing.assert_allclose(att[border, :2], p["head_border"], rtol=1e-6)
    np.testing.assert_allclose(att[rig.inner_ring, :2],
                               R.head_inner_uv(lm[:, :2], T.face_triangles()), rtol=1e-6)
    # the head layer draws ring 1 through its own vertices, never through the face's
    head = rig.triangles[slice(*rig.ranges["head"])]
    assert not np.isin(head, T.FACE_OVAL).any()
    assert set(range(rig.inner_ring.start, rig.inner_ring.stop)) <= set(head.ravel().tolist())
    # mouth-cavity coordinates: m = +1 upper inner lip, -1 lower, 0 corners and centre;
    # mx from -1 (right corner, 78) to +1 (left corner, 308)
    assert (att[list(T.INNER_LIP_UPPER[1:-1]), 2] == 1).all()
    assert (att[list(T.INNER_LIP_LOWER[1:-1]), 2] == -1).all()
    assert att[[78, 308, R.MOUTH_CENTRE], 2].tolist() == [0, 0, 0]
    assert att[78, 3] == -1 and att[308, 3] == 1
    assert att[13, 3] == pytest.approx(0.0, abs=0.15)  # the lip centre is mid-mouth
    mx = att[list(T.INNER_LIP_UPPER), 3]
    assert (np.diff(mx) > 0).all()  # increasing from corner to corner
    assert not att[[10, 152, 1], 2:].any()  # non-lip vertices carry no cavity coordinates


def test_pose_at_rest_maps_the_photo_into_the_crop(rig, astronaut_profile):
    p = astronaut_profile
    rec = Recombiner(p["neutral"], p.frame())
    state = FaceState.neutral()
    v = rig.pose(rec(state), rec.pose(state))
    assert v.shape == (rig.vertex_count, 3) and v.dtype == np.float32
    a = rig.crop_from_image
    rest = rig.attributes[:, :2].astype(np.float64)
    rest[rig.inner_ring] = rest[list(T.FACE_OVAL)]  # ring 1 sits on the oval (its texture may not)
    np.testing.assert_allclose(v[:, :2], _crop(a, rest), atol=2e-3)
    # face depth scaled like x/y; the head layer behind everything
    s = float(np.hypot(a[0, 0], a[0, 1]))
    np.testing.assert_allclose(v[: T.N_LANDMARKS, 2], p["landmarks"][:, 2] * s, rtol=1e-5, atol=1e-3)
    assert (v[R.HEAD_START:, 2] == R.FAR_Z).all()
    assert v[: R.HEAD_START, 2].max() < R.FAR_Z / 10
    # `out` is filled in place
    out = np.zeros_like(v)
    assert rig.pose(rec(state), rec.pose(state), out=out) is out
    np.testing.assert_array_equal(out, v)


def test_pose_moves_face_and_rings_but_not_the_border(rig, astronaut_profile):
    p = astronaut_profile
    rec = Recombiner(p["neutral"], p.frame())
    rest = rig.pose(rec(FaceState.neutral()), rec.pose(FaceState.neutral()))
    state = FaceState(rotation=G.rotation_from_euler(30, 10, 5))
    v = rig.pose(rec(state), rec.pose(state))
    k = len(p["head_points"])
    border = slice(R.HEAD_START + k, rig.inner_ring.start)
    np.testing.assert_array_equal(v[border], rest[border])
    # ring 1 goes where the face's oval goes, behind the face
    np.testing.assert_array_equal(v[rig.inner_ring, :2], v[list(T.FACE_OVAL), :2])
    assert (v[rig.inner_ring, 2] == R.FAR_Z).all()
    ring = slice(R.HEAD_START, R.HEAD_START + k)
    assert np.abs(v[ring, :2] - rest[ring, :2]).max() > 5
    assert np.abs(v[: T.N_LANDMARKS, :2] - rest[: T.N_LANDMARKS, :2]).max() > 10
    lips = sorted(set(T.INNER_LIP_UPPER) | set(T.INNER_LIP_LOWER))
    np.testing.assert_allclose(v[R.MOUTH_CENTRE, :2], v[lips, :2].mean(0), atol=1e-3)
    for centre, loop in zip(R.EYE_CENTRES, R.EYE_LOOPS):
        np.testing.assert_allclose(v[centre, :2], v[loop, :2].mean(0), atol=1e-3)


def test_rest_render_covers_the_crop_and_draws_the_face_in_front(rig, astronaut_profile):
    p = astronaut_profile
    rec = Recombiner(p["neutral"], p.frame())
    v = rig.pose(rec(FaceState.neutral()), rec.pose(FaceState.neutral()))
    gbuf = rasterize(v, rig.triangles, rig.crop_size, rig.crop_size)
    s = rig.crop_size
    assert (gbuf.tri_id[: s - 1, : s - 1] >= 0).all()
    lo, hi = rig.ranges["head"]
    face_px = p["face_mask"].astype(bool)
    on_face = gbuf.tri_id[face_px]
    assert ((on_face < lo) | (on_face >= hi)).mean() > 0.99  # the head layer stays behind
    assert rig.crop_size == p.crop_size
    np.testing.assert_array_equal(rig.crop_from_image, p["crop_from_image"].astype(np.float64))


def _rig_with_scale(rig, scale):
    import dataclasses

    return dataclasses.replace(rig, crop_from_image=np.array([[scale, 0, 3.0], [0, scale, 5.0]],
                                                             np.float32))


def test_texture_is_prefiltered_to_the_crop_density(rig):
    from kernels import texture

    yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
    smooth = np.stack([xx, yy, 0.5 * (xx + yy)], -1)       # linear: any area filter keeps it
    stripes = np.repeat(((xx.astype(int) % 2) * 255.0)[..., None], 3, -1).astype(np.float32)
    uv = np.array([[10.0, 20.0], [123.25, 77.5], [390.0, 290.0]], np.float32)
    r = _rig_with_scale(rig, 0.25)                          # 4 photo px per crop px
    img, uv2 = r.texture_at_crop_density(smooth, uv, oversample=1.25)
    assert img.shape[:2] == (round(300 * 0.3125), round(400 * 0.3125))
    got = texture(img, uv2[None])[0]
    want = np.stack([uv[:, 0], uv[:, 1], 0.5 * (uv[:, 0] + uv[:, 1])], -1)
    assert np.abs(got - want).max() < 0.5                   # the same place of the photo
    # 1-px stripes: sampled straight they alias (0 or 255 by the sub-pixel phase); prefiltered
    # they are grey whatever the phase, so a moving head no longer shimmers.
    phases = np.array([[100.0 + p, 100.0] for p in np.linspace(0, 1, 9)], np.float32)
    raw = texture(stripes, phases[None])[0, :, 0]
    img, ph2 = r.texture_at_crop_density(stripes, phases, oversample=1.25)
    pre = texture(img, ph2[None])[0, :, 0]
    assert np.ptp(raw) > 200 and np.ptp(pre) < 40


def test_texture_is_left_alone_when_not_denser_than_the_crop(rig):
    img = np.zeros((50, 60, 3), np.uint8)
    uv = np.ones((4, 2), np.float32)
    r = _rig_with_scale(rig, 0.9)
    out, uv2 = r.texture_at_crop_density(img, uv, oversample=1.25)
    assert out is img and uv2 is uv


# ------------------------------------------------------------------------- head-layer ring 1
def _disc_face(n_ring=36, radius=10.0):
    """A fan of triangles over a disc: centre 0, ring points 1..n_ring (counter-clockwise)."""
    ang = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
    pts = np.concatenate([[[0.0, 0.0]], radius * np.stack([np.cos(ang), np.sin(ang)], 1)])
    tris = np.array([[0, 1 + i, 1 + (i + 1) % n_ring] for i in range(n_ring)])
    return pts, tris


def test_head_inner_uv_is_the_oval_where_the_face_stays_inside_it(monkeypatch):
    pts, tris = _disc_face()
    monkeypatch.setattr(R, "_OVAL", np.arange(1, 37))
    np.testing.assert_allclose(R.head_inner_uv(pts, tris), pts[1:], atol=1e-9)


def test_head_inner_uv_reaches_the_far_edge_of_a_face_that_passes_the_oval(monkeypatch):
    """A face point beyond the oval (a turned cheek): the ring starts where the face's texture
    ends, along the ray from the oval's centre, and only there."""
    pts, tris = _disc_face()
    bulge = np.array([[13.0, 0.0]])                    # beyond oval point 1 at (10, 0)
    pts = np.concatenate([pts, bulge])
    tris = np.concatenate([tris, [[1, 37, 2], [36, 37, 1]]])
    monkeypatch.setattr(R, "_OVAL", np.arange(1, 37))
    got = R.head_inner_uv(pts, tris)
    np.testing.assert_allclose(got[0], [13.0, 0.0], atol=1e-9)     # pushed out to the bulge
    far = np.hypot(*got.T)
    assert (far[1:] < 13.0).all() and (far >= 10.0 - 1e-9).all()   # never pulled inside
    np.testing.assert_allclose(got[5:-5], pts[6:32], atol=1e-9)    # far from it: the oval


def test_sharpen_texture_compensates_without_changing_flat_colour():
    rng = np.random.default_rng(3)
    flat = np.full((20, 30, 3), 117, np.uint8)
    assert np.array_equal(R.sharpen_texture(flat, 0.25), flat)            # DC gain 1
    img = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3)).astype(np.uint8), (0, 0), 1.0)
    out = R.sharpen_texture(img, 0.25)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(R.sharpen_texture(img, 0.0), img)

    def lap(x):
        return cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()

    assert lap(out) > 1.5 * lap(img)
    # what it is for: after a bilinear half-pixel shift, closer to the original than without
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])

    def moved(x):
        return cv2.warpAffine(x, shift, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    ref = cv2.warpAffine(img, shift, (64, 64), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    assert abs(lap(moved(out)) - lap(ref)) < abs(lap(moved(img)) - lap(ref))


def test_the_texture_prefilter_follows_the_render_density_and_sharpening(astronaut_profile):
    from realtime.mesh.scaled import ScaledProfile

    p = astronaut_profile
    img = np.ascontiguousarray(p["image"])
    uv = np.ascontiguousarray(R.build(p).attributes[:, :2])
    # the astronaut's 256² crop is denser than her photo: the photo as it is; at 128² the
    # photo is 1.6× denser than 1.25 texels per crop pixel and is area-reduced
    big, uv2 = R.build(p).texture_at_crop_density(img, uv)
    assert big is img and uv2 is uv
    small, uv_small = R.build(ScaledProfile(p, p.crop_size // 2)).texture_at_crop_density(img, uv)
    assert small.shape[0] < big.shape[0] and not np.array_equal(uv_small, uv)
    sharp, uv3 = R.build(p, texture_sharpen=0.25).texture_at_crop_density(img, uv)
    assert sharp.shape == img.shape and np.array_equal(uv3, uv) and not np.array_equal(sharp, img)


def test_texel_density_is_the_photos_own_at_most_the_oversampling():
    dense = np.array([[0.5, 0.0, 3.0], [0.0, 0.5, 1.0]])   # 2 photo px per crop px
    assert R.texel_density(dense) == pytest.approx(R.TEXTURE_OVERSAMPLE)
    assert R.texel_density(np.array([[2.0, 0.0, 3.0], [0.0, 2.0, 1.0]])) == pytest.approx(0.5)


def test_fan_edge_heights_are_the_centres_distance_to_the_rim():
    v = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [5.0, 4.0, 9.0], [10.0, 10.0, 0.0]])
    fans = np.array([[0, 1, 2], [1, 3, 2]])      # (rim i, rim i + 1, centre)
    h = R.fan_edge_heights(v, fans)
    assert h.dtype == np.float32
    np.testing.assert_allclose(h, [4.0, 5.0], rtol=1e-6)   # z is ignored
