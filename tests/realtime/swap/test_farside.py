"""realtime.swap.farside: a turned photo's squeezed far side is filled from its mirror; a frontal
photo, the features, and everything outside the face are left as they are."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.frame import Frame
from realtime.engine.loop import Engine, EngineOptions
from realtime.face import topology
from realtime.image.disclose import DisclosureOptions
from realtime.swap.farside import FEATHER, _filled, _plan, far_side_weights, fill_far_side, squeeze, weight_map


def symmetric(landmarks):
    """The landmarks made exactly left/right symmetric about their mid line."""
    pts = np.asarray(landmarks, np.float64)[:, :2].copy()
    centre = 0.5 * (pts[:, 0] + pts[topology.MIRROR, 0]).mean()
    mirrored = pts[topology.MIRROR].copy()
    mirrored[:, 0] = 2 * centre - mirrored[:, 0]
    return 0.5 * (pts + mirrored), centre


def turned(landmarks, factor=0.3):
    """Symmetric landmarks with the subject's right side (image left of the mid line) squeezed
    towards it by `factor` beyond the eye: a face turned to its right, roughly."""
    pts, centre = symmetric(landmarks)
    iod = np.linalg.norm(pts[33] - pts[263])
    x = pts[:, 0] - centre
    far = x < -0.3 * iod
    pts[far, 0] = centre - 0.3 * iod + (x[far] + 0.3 * iod) * factor
    return pts, centre, iod


def test_a_frontal_photo_is_left_as_it_is(astronaut_rgb, astronaut_landmarks):
    pts, _ = symmetric(astronaut_landmarks)
    # (the tessellation is not exactly mirror-symmetric: a few rings differ from their mirror's)
    assert np.median(squeeze(pts)) == pytest.approx(1.0) and not far_side_weights(pts).any()
    assert fill_far_side(astronaut_rgb, pts) is astronaut_rgb


def test_the_squeezed_side_takes_the_near_sides_skin(astronaut_landmarks):
    pts, centre, iod = turned(astronaut_landmarks)
    h, w = 512, 512
    photo = np.zeros((h, w, 3), np.uint8)
    photo[:, : int(centre)] = (40, 30, 30)        # the far side: shadow and hair
    photo[:, int(centre):] = (200, 150, 130)      # the near side: lit skin
    out = fill_far_side(photo, pts)
    assert out is not photo and out.dtype == np.uint8 and out.shape == photo.shape
    tri = topology.face_triangles()
    # where the weight is full, the far side is now the near side's colour
    full = weight_map(photo, pts) > 0.95
    assert full.sum() > 30 and not full[:, int(centre) + 1:].any()
    assert np.abs(out[full].astype(int) - (200, 150, 130)).max() <= 0.05 * 160 + 1
    tri = topology.face_triangles()
    # nothing changes outside the face's triangles grown by the feather, nor inside the eyes
    face = np.zeros((h, w), np.uint8)
    for t in tri:
        cv2.fillConvexPoly(face, np.rint(pts[t]).astype(np.int32), 1)
    grow = int(np.ceil(4 * FEATHER * iod)) + 2
    face = cv2.dilate(face, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    np.testing.assert_array_equal(out[~face], photo[~face])
    eye = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(eye, np.rint(pts[list(topology.RIGHT_EYE_UPPER) + list(topology.RIGHT_EYE_LOWER)[::-1]])
                       .astype(np.int32), 1)
    assert eye.sum() > 20
    assert np.abs(out[eye > 0].astype(int) - photo[eye > 0]).mean() < 20


def test_the_fill_has_no_step_at_its_inner_edge(astronaut_landmarks):
    """The feather blends into a mirror image on both sides of the fill's edge: across the far
    cheek, from the outline to the mid line, no two neighbouring pixels differ by more than a
    feathered ramp does (stop 53's version jumped by about half the difference at its edge)."""
    pts, centre, iod = turned(astronaut_landmarks)
    h, w = 512, 512
    photo = np.zeros((h, w, 3), np.uint8)
    photo[:, : int(centre)] = (40, 30, 30)
    photo[:, int(centre):] = (200, 150, 130)
    out = fill_far_side(photo, pts).astype(np.float32)
    weight = weight_map(photo, pts)
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(pts).astype(np.int32)), 1)
    inner = cv2.erode(face, np.ones((9, 9), np.uint8)) > 0
    inner[:, int(centre) - 3:] = False                      # the photo's own edge
    jump = np.abs(np.diff(out.mean(-1), axis=1))
    both = inner[:, 1:] & inner[:, :-1]
    ramp = 160 / (np.sqrt(2 * np.pi) * FEATHER * iod)       # a Gaussian feather's steepest slope
    assert weight.max() > 0.95 and (weight[inner] == 0).any()
    assert jump[both].max() < 1.5 * ramp, (jump[both].max(), ramp)
    # the mirror image reaches past the filled triangles (the feather blends into it): just
    # outside them the mirrored picture is already the near side's colour
    mirrored, _ = _plan(photo, pts[:topology.N_MESH, :2])
    filled = np.zeros((h, w), np.uint8)
    tri = topology.face_triangles()
    for k in np.flatnonzero(_filled(pts[:topology.N_MESH, :2], (h, w)) > 0):
        cv2.fillConvexPoly(filled, np.rint(pts[tri[k], :2]).astype(np.int32), 1)
    rim = (cv2.dilate(filled, np.ones((5, 5), np.uint8)) > 0) & (filled == 0) & inner
    assert rim.sum() > 20 and np.median(mirrored[rim][:, 0]) == pytest.approx(200, abs=2)


def test_the_fill_is_full_along_the_far_outline(astronaut_landmarks):
    """The squeezed strip along the far outline is what the fill is for: the weight there is not
    ramped down by the outline's rim (pixels of the face's hull that no triangle covers), as the
    first version of the ramp did (median 0.24 here, against 0.75 before it and 0.74 now)."""
    pts, centre, iod = turned(astronaut_landmarks)
    h, w = 512, 512
    photo = np.zeros((h, w, 3), np.uint8)
    photo[:, : int(centre)] = (40, 30, 30)
    photo[:, int(centre):] = (200, 150, 130)
    weight = weight_map(photo, pts)
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(pts[:topology.N_MESH, :2]).astype(np.int32)), 1)
    depth = cv2.distanceTransform(face, cv2.DIST_L2, 3)
    rows = (np.arange(h)[:, None] > pts[33, 1]) & (np.arange(h)[:, None] < pts[152, 1] - 0.3 * iod)
    band = (depth > 0) & (depth <= 3) & rows & (np.arange(w)[None, :] < centre - 0.35 * iod)
    assert band.sum() > 30 and np.median(weight[band]) > 0.5


def test_hair_on_the_near_sides_outline_is_not_mirrored(astronaut_landmarks):
    """A dark patch (hair) just inside the near side's outline at eye height is not painted onto
    the far cheek (stop 53's version put 63 dark pixels there; the painted s9 showed it)."""
    pts, centre, iod = turned(astronaut_landmarks)
    h, w = 512, 512
    photo = np.full((h, w, 3), (200, 150, 130), np.uint8)
    photo[:, : int(centre)] = (120, 90, 80)
    oval = pts[list(topology.FACE_OVAL)]
    near = np.flatnonzero(oval[:, 0] > centre)
    x_edge, y_edge = oval[near[np.argmin(np.abs(oval[near, 1] - pts[33, 1]))]]
    photo[int(y_edge - 0.25 * iod):int(y_edge + 0.25 * iod), int(x_edge - 0.3 * iod):] = (30, 20, 15)
    out = fill_far_side(photo, pts)
    assert out is not photo
    far = np.arange(w)[None, :] < centre
    assert (np.abs(out.astype(int) - photo)[np.broadcast_to(far, (h, w))] > 20).sum() > 100   # filled
    assert not ((out.astype(int).sum(-1) < 150) & far).any()                                # no hair


@pytest.mark.parametrize("factor, filled", [(1.0, False), (0.9, False), (0.3, True)])
def test_only_a_real_turn_fills(astronaut_rgb, astronaut_landmarks, factor, filled):
    pts, _, _ = turned(astronaut_landmarks, factor)
    assert (fill_far_side(astronaut_rgb, pts) is not astronaut_rgb) == filled


def test_the_swap_renders_the_filled_photo_unless_told_not_to(astronaut_profile, astronaut_rgb, monkeypatch):
    """The swap textures the face with what `fill_far_side` returns (here a stand-in that
    darkens the photo) when asked (the default; live --fill-far-side), and with the photo as it
    is when not (live --no-fill-far-side)."""
    from realtime.swap import farside

    monkeypatch.setattr(farside, "fill_far_side", lambda photo, landmarks: (photo // 2).astype(np.uint8))

    def swapped(fill):
        engine = Engine(astronaut_profile, EngineOptions(
            mode="swap", output_size=(512, 512), fps=30.0, kernel_threads=1, fill_far_side=fill,
            even_grain=False, disclosure=DisclosureOptions(label=False, mark=False)))
        engine.warm_up()
        frame = Frame(index=0, t_capture=0.0, image=astronaut_rgb)
        engine.process(frame)
        engine.close()
        return frame.render.astype(np.float32)

    filled, kept = swapped(True), swapped(False)
    drawn = kept.sum(-1) > 0
    assert drawn.mean() > 0.2
    assert filled[drawn].mean() == pytest.approx(0.5 * kept[drawn].mean(), rel=0.05)


@pytest.mark.parametrize("width", [0.2, 0.4])
def test_hair_along_the_whole_near_outline_is_still_hair(astronaut_landmarks, width):
    """Hair covering the near side's outline `width` interoculars deep (most of what the far
    strip's mirror takes) is judged against the face's inner skin, not against the fill's own
    median, which the hair then is: none of it reaches the far side (0.4 deep painted 45 dark
    pixels there when the fill's median was the reference)."""
    pts, centre, iod = turned(astronaut_landmarks)
    h, w = 512, 512
    photo = np.full((h, w, 3), (200, 150, 130), np.uint8)
    photo[:, : int(centre)] = (120, 90, 80)
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.rint(pts[:topology.N_MESH, :2]).astype(np.int32)), 1)
    depth = cv2.distanceTransform(face, cv2.DIST_L2, 3)
    photo[(depth < width * iod) & (np.arange(w)[None, :] > centre + 0.3 * iod)] = (30, 20, 15)
    out = fill_far_side(photo, pts)
    far = (np.arange(w)[None, :] < centre) & (face > 0)
    assert not ((out.astype(int).sum(-1) < 150) & far).any()


def test_hair_only_fills_the_far_sides_hair_and_keeps_its_skin(astronaut_landmarks):
    """An atlas keyframe's far cheek (`SwapPhotoProfile`): its hair is filled from the near side
    (s18 ← d10: a turned keyframe's hair at the cheek's edge made a dark crescent down the swapped
    cheek), its own skin stays (the fill of the whole side made the swap less like the video's
    face: dlib distance to the photo 0.540 → 0.589 on s18 ← d10)."""
    pts, centre, iod = turned(astronaut_landmarks, 0.4)
    pts, centre, iod = 2.0 * pts, 2.0 * centre, 2.0 * iod          # room for a strand and skin beside it
    h, w = 1024, 1024
    photo = np.full((h, w, 3), (200, 150, 130), np.uint8)          # lit skin
    filled = weight_map(photo, pts) > 0.5
    xs = np.nonzero(filled)[1]
    assert xs.max() < centre and filled.sum() > 1000
    photo[:, : int(centre - 0.3 * iod)] = (185, 138, 122)          # the far side's skin, a little darker
    strand = np.zeros((h, w), bool)                                 # a band of dark hair down it
    strand[:, xs.min() + 2: xs.min() + 7] = True
    photo[strand] = (40, 25, 20)
    hair, skin = strand & filled, filled & (np.arange(w) >= xs.min() + 14)
    assert hair.sum() > 50 and skin.sum() > 150
    whole, only = fill_far_side(photo, pts), fill_far_side(photo, pts, hair_only=True)
    assert np.abs(only[hair].astype(int) - (200, 150, 130)).mean() < 30              # the hair goes
    np.testing.assert_array_equal(only[skin], photo[skin])                           # the far skin stays
    assert np.abs(whole[skin].astype(int) - photo[skin]).max() >= 10                 # (the whole fill takes it)
    plain = np.full_like(photo, (200, 150, 130))   # no hair on the far side: the photo itself
    assert fill_far_side(plain, pts, hair_only=True) is plain


@pytest.mark.parametrize("width", [244, 260, 286, 300])
def test_a_far_side_cut_off_by_the_frame_is_no_crash(astronaut_landmarks, width):
    """Review of stop 65: with the far cheek off the photo's right edge, the vectorised fill
    sliced an empty box and raised IndexError (the per-triangle one skipped such triangles)."""
    pts, _, _ = turned(astronaut_landmarks, 0.4)
    pts = pts.copy()
    pts[:, 0] = 511 - pts[:, 0]                    # turned the other way: the far side on the right
    photo = np.full((512, width, 3), (200, 150, 130), np.uint8)
    out = fill_far_side(photo, pts)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert fill_far_side(photo, pts, hair_only=True).shape == photo.shape
