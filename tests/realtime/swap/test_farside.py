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
from realtime.swap.farside import FEATHER, far_side_weights, fill_far_side, squeeze, weight_map


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
    full = weight_map(pts, (h, w)) > 0.95
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


@pytest.mark.parametrize("factor, filled", [(1.0, False), (0.9, False), (0.3, True)])
def test_only_a_real_turn_fills(astronaut_rgb, astronaut_landmarks, factor, filled):
    pts, _, _ = turned(astronaut_landmarks, factor)
    assert (fill_far_side(astronaut_rgb, pts) is not astronaut_rgb) == filled


def test_the_swap_renders_the_filled_photo_unless_told_not_to(astronaut_profile, astronaut_rgb, monkeypatch):
    """The swap textures the face with what `fill_far_side` returns (here a stand-in that
    darkens the photo) when asked (live --fill-far-side), and with the photo as it is by default."""
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
