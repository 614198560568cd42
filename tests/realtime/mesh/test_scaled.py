"""realtime.mesh.scaled: a profile seen at another render resolution (ScaledProfile)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kernels import rasterize
from realtime.core.frame import Frame
from realtime.core.profile import ProfileLike
from realtime.face import topology
from realtime.face.state import FaceState
from realtime.image.render import RenderStage
from realtime.mesh import rig as R
from realtime.mesh.fuse import Recombiner
from realtime.mesh.scaled import ScaledProfile, scale_crop_affine
from realtime.tiers.registry import GenerateStage, make_generator


def _apply(a: np.ndarray, pts: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return pts[:, :2] @ a[:, :2].T + a[:, 2]


def test_scale_crop_affine_keeps_pixel_centres_and_edges():
    a = np.array([[0.4, 0.0, -10.0], [0.0, 0.4, 7.5]])
    b = scale_crop_affine(a, 2.5)
    pts = np.array([[30.0, 40.0], [100.0, -5.0], [0.0, 0.0]])
    np.testing.assert_allclose(_apply(b, pts), (_apply(a, pts) + 0.5) * 2.5 - 0.5, atol=1e-12)
    np.testing.assert_allclose(scale_crop_affine(a, 1.0), a)


def test_view_is_a_profile_like_at_the_new_size(astronaut_profile):
    p = astronaut_profile
    v = ScaledProfile(p, 384)
    assert isinstance(v, ProfileLike)
    assert v.crop_size == 384 and v.scale == pytest.approx(1.5) and v.base is p
    assert (v.name, v.tier, v.settings, v.files, v.has_atlas) == \
        (p.name, p.tier, p.settings, p.files, p.has_atlas)
    for key in ("image", "landmarks", "neutral", "head_border", "head_points", "head_triangles"):
        assert v[key] is p[key]                      # everything off the crop is the profile's
    assert v.frame().scale == p.frame().scale
    assert v["paste_mask"].shape == (384, 384) and v["paste_mask"].dtype == np.float32
    assert v["face_mask"].shape == (384, 384) and v["face_mask"].dtype == np.uint8
    assert v["crop_from_image"].shape == (2, 3)
    assert "ScaledProfile" in repr(v)


def test_crop_transform_is_scaled_and_the_head_border_still_closes_the_crop(astronaut_profile):
    p = astronaut_profile
    v = ScaledProfile(p, 512)
    k = 512 / p.crop_size
    lm = p["landmarks"].astype(np.float64)
    np.testing.assert_allclose(_apply(v["crop_from_image"], lm),
                               (_apply(p["crop_from_image"], lm) + 0.5) * k - 0.5, atol=2e-3)
    border = _apply(v["crop_from_image"], p["head_border"].astype(np.float64))
    # the head layer's fixed border lies on the new crop's pixel edges, −½ and S' − ½
    assert border.min() == pytest.approx(-0.5, abs=2e-3)
    assert border.max() == pytest.approx(512 - 0.5, abs=2e-3)


def test_masks_are_the_profiles_masks_at_the_new_size(astronaut_profile):
    p = astronaut_profile
    v = ScaledProfile(p, 512)
    # the paste mask: the profile's own blend footprint, resampled (area-reduced back to S it is
    # the profile's mask again), not a new mask of S' pixels
    back = cv2.resize(v["paste_mask"], (p.crop_size,) * 2, interpolation=cv2.INTER_AREA)
    assert np.abs(back - p["paste_mask"]).max() < 0.01
    assert 0.0 <= v["paste_mask"].min() and v["paste_mask"].max() <= 1.0
    # the face mask: the neutral face rasterised at S' (up to the boundary pixels)
    verts = p["landmarks"].astype(np.float32).copy()   # as enrolment rasterises it, at S'
    verts[:, :2] = _apply(v["crop_from_image"], verts).astype(np.float32)
    ref = rasterize(verts, topology.face_triangles(), 512, 512).tri_id >= 0
    got = v["face_mask"].astype(bool)
    assert (got & ref).sum() / (got | ref).sum() > 0.98
    # smaller than the profile: area-averaged, still in range
    small = ScaledProfile(p, 128)
    assert small["paste_mask"].shape == (128, 128) and small["face_mask"].shape == (128, 128)
    assert small["paste_mask"].max() <= 1.0


def test_too_small_a_view_is_refused(astronaut_profile):
    with pytest.raises(ValueError, match="below"):
        ScaledProfile(astronaut_profile, 8)


def _render(profile, state=None) -> tuple[np.ndarray, np.ndarray]:
    """(warp-tier crop, face mask of the render) of `profile` (or a view) at rest."""
    rig = R.build(profile)
    rec = Recombiner(profile["neutral"], profile.frame())
    state = state if state is not None else FaceState.neutral()
    f = Frame(index=0, t_capture=0.0, state=state)
    f.vertices = rig.pose(rec(state), rec.pose(state))
    RenderStage(rig)(f)
    GenerateStage(make_generator("warp", profile, rig))(f)
    lo, hi = rig.ranges["head"]
    return f.render, (f.gbuf.tri_id >= 0) & (f.gbuf.tri_id < lo)


def test_a_render_at_twice_the_size_is_the_same_picture_with_more_detail(astronaut_profile):
    """The warp tier at S' = 2S draws the same image as at S: area-reduced to S and blurred,
    both agree within a grey level or two on the face; and it carries more fine detail than the
    S render upsampled."""
    p = astronaut_profile
    s = p.crop_size
    base, face = _render(p)
    big, face2 = _render(ScaledProfile(p, 2 * s))
    assert big.shape == (2 * s, 2 * s, 3) and face2.shape == (2 * s, 2 * s)
    down = cv2.resize(big, (s, s), interpolation=cv2.INTER_AREA)
    inner = cv2.erode(face.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)

    def low(x):
        return cv2.GaussianBlur(x, (0, 0), 2.0)

    diff = np.abs(low(down) - low(base)).mean(2)[inner]
    assert diff.mean() < 1.5 and np.percentile(diff, 99) < 6.0
    up = cv2.resize(base, (2 * s, 2 * s), interpolation=cv2.INTER_LINEAR)
    inner2 = cv2.erode(face2.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)

    def detail(x):
        return cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.CV_32F)[inner2].var()

    assert detail(big) > 1.5 * detail(up)
