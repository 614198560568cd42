"""realtime.swap.sockets: a photo's shaded eye sockets are lifted towards its skin (lightness, in
full up to the socket's edge, and colour), a lid shaded as a whole is lifted while its lashes
keep their contrast, sockets already as light as a real one are left as they are, the eyes, the
brows and everything outside the face keep their pixels, and the swap's photo profile holds the
lifted photo."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.face import topology
from realtime.swap import sockets
from realtime.swap.crop import _ring
from realtime.swap.sockets import REFERENCE, lift_sockets, socket_mask


def lab(rgb):
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


@pytest.fixture
def flat_face(astronaut_rgb, astronaut_landmarks):
    """The astronaut with her face's hull painted one skin colour (sockets as light as the skin)."""
    photo = astronaut_rgb.copy()
    hull = cv2.convexHull(np.rint(astronaut_landmarks[:468, :2]).astype(np.int32))
    mask = np.zeros(photo.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    photo[mask > 0] = (214, 168, 140)
    return photo


def shaded(photo, landmarks, darker=0.5, tint=(1.0, 0.8, 0.75)):
    """`photo` with its sockets darkened to `darker` of their light and tinted red-brown, and a
    dark lash line along each upper lid; (photo, socket mask, lash mask)."""
    sock = socket_mask(landmarks, photo.shape[:2])
    out = photo.astype(np.float32)
    out[sock > 0] *= darker * np.asarray(tint, np.float32)
    lash = np.zeros(photo.shape[:2], np.uint8)
    for upper in (topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER):
        cv2.polylines(lash, [np.rint(landmarks[list(upper), :2]).astype(np.int32)], False, 1, 2)
    out[lash > 0] = 25.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), sock > 0, lash > 0


def test_sockets_as_light_as_the_skin_are_left_as_they_are(flat_face, astronaut_landmarks):
    assert lift_sockets(flat_face, astronaut_landmarks) is flat_face


def test_a_tiny_face_is_left_as_it_is(flat_face, astronaut_landmarks):
    small = cv2.resize(flat_face, (48, 48), interpolation=cv2.INTER_AREA)
    lm = astronaut_landmarks * np.array([48 / 512, 48 / 512, 1.0])
    photo, _, _ = shaded(small, lm)
    assert lift_sockets(photo, lm) is photo


@pytest.mark.parametrize("scale", [1, 2])
def test_shaded_sockets_are_lifted_towards_the_skin_and_nothing_else_changes(flat_face, astronaut_landmarks, scale):
    """At scale 2 the face (120 px an interocular) is measured at WORK_IOD and lifted at its own size."""
    if scale != 1:
        flat_face = cv2.resize(flat_face, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        astronaut_landmarks = astronaut_landmarks * np.array([scale, scale, 1.0])
    photo, sock, lash = shaded(flat_face, astronaut_landmarks)
    out = lift_sockets(photo, astronaut_landmarks)
    assert out is not photo and out.shape == photo.shape and out.dtype == np.uint8
    before, after, skin = lab(photo), lab(out), lab(flat_face)[sock][:, 0].mean()
    # the socket's core (away from its feathered edge and the lashes)
    core = cv2.erode(sock.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    core &= ~(cv2.dilate(lash.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    assert core.sum() > 50 * scale * scale
    l0, l1 = before[core][:, 0].mean(), after[core][:, 0].mean()
    # most of the way up (LIFT of it at most): the strip is a few work pixels tall, and its
    # weight blurred across its edge lifted it 0.61 of the way at scale 2 (0.74 now)
    assert l1 - l0 > 0.7 * (REFERENCE * skin - l0), (l0, l1, skin)
    assert l1 < skin + 2.0                                                # not past the skin
    # its red-brown tint goes back towards the skin's colour as far as its lightness went
    ab_skin = lab(flat_face)[core][:, 1:].mean(0)
    d0 = np.linalg.norm(before[core][:, 1:].mean(0) - ab_skin)
    d1 = np.linalg.norm(after[core][:, 1:].mean(0) - ab_skin)
    went_l, went_ab = (l1 - l0) / (skin - l0), 1.0 - d1 / d0
    assert went_ab > 0.35 and abs(went_ab - went_l) < 0.15, (went_l, went_ab)
    # the lashes stay much darker than the lifted socket round them; nothing gets darker
    assert after[lash][:, 0].mean() < 0.6 * l1
    assert (after[..., 0] >= before[..., 0] - 0.5).all()
    # nothing changes away from the eyes: the mouth, the cheeks' lower half, the background
    pts = astronaut_landmarks[:468, :2]
    iod = np.linalg.norm(pts[33] - pts[263])
    rows = np.arange(photo.shape[0])[:, None]
    cols = np.arange(photo.shape[1])[None, :]
    eyes_y = pts[[33, 263], 1].mean()
    far = (rows > eyes_y + 0.6 * iod) | (rows < eyes_y - 0.9 * iod) | \
          (cols < pts[:, 0].min() - 0.1 * iod) | (cols > pts[:, 0].max() + 0.1 * iod)
    np.testing.assert_array_equal(out[far], photo[far])


def test_the_lift_is_bounded(flat_face, astronaut_landmarks, monkeypatch):
    """A socket at half its skin's light would be lifted by ~1.7; capped at MAX_GAIN it is lifted
    (the photo changes) but by no more than the cap."""
    monkeypatch.setattr(sockets, "MAX_GAIN", 1.2)
    photo, sock, _ = shaded(flat_face, astronaut_landmarks, darker=0.5)
    out = lift_sockets(photo, astronaut_landmarks)
    assert out is not photo
    before, after = lab(photo)[sock][:, 0], lab(out)[sock][:, 0]
    assert (after > before + 1.0).mean() > 0.5           # lifted, most of the socket
    assert (after <= before * 1.2 + 1.0).all()


def test_the_eye_openings_keep_their_pixels(flat_face, astronaut_landmarks):
    """The whites and irises inside the lid contours are not lifted with the sockets round them."""
    photo, _, _ = shaded(flat_face, astronaut_landmarks)
    eyes = sockets.eye_openings(astronaut_landmarks, photo.shape[:2]) > 0
    photo[eyes] = (90, 70, 60)                  # an eye as dark as the shaded socket round it
    out = lift_sockets(photo, astronaut_landmarks)
    assert out is not photo and eyes.sum() > 100
    np.testing.assert_array_equal(out[eyes], photo[eyes])
    ring = (cv2.dilate(eyes.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~eyes
    assert (lab(out)[ring][:, 0] > lab(photo)[ring][:, 0] + 1.0).mean() > 0.3   # their rim is lifted


def test_the_swap_photo_profile_holds_the_lifted_photo(astronaut_profile, astronaut_landmarks, flat_face):
    from realtime.swap.photo import SwapPhotoProfile

    class Shaded:
        def __init__(self, base, image):
            self.base, self.image = base, image

        def __getattr__(self, name):
            return getattr(self.base, name)

        def __getitem__(self, key):
            return self.image if key == "image" else self.base[key]

    photo, _, _ = shaded(flat_face, astronaut_landmarks)
    profile = Shaded(astronaut_profile, photo)
    lifted = SwapPhotoProfile(profile, even_grain=False, fill_far_side=False)
    kept = SwapPhotoProfile(profile, even_grain=False, fill_far_side=False, lift_sockets=False)
    assert lifted.lifted and not kept.lifted and kept["image"] is photo
    np.testing.assert_array_equal(lifted["image"], lift_sockets(photo, astronaut_profile["landmarks"]))


def test_a_socket_painted_near_black_is_not_measured_as_light(flat_face, astronaut_landmarks):
    """A socket darker than DARK of the skin reads as lashes, not light: nothing there is
    measured, so it is not blown up towards the skin (at most MAX_GAIN, and here not at all)."""
    photo, sock, _ = shaded(flat_face, astronaut_landmarks, darker=0.05)
    out = lift_sockets(photo, astronaut_landmarks)
    before, after = lab(photo)[sock][:, 0], lab(out)[sock][:, 0]
    assert (after <= before * sockets.MAX_GAIN + 1.0).all()
    assert np.median(after - before) < 1.0


def _strip_points(landmarks):
    """(N, 2) points halfway between each eye's second mesh ring above the upper lid and the
    brow's lower contour (right eye: 221..225 below 55..46; left: 441..445 below 285..276)."""
    pairs = [(221, 55), (222, 65), (223, 52), (224, 53), (441, 285), (442, 295), (443, 282), (444, 283)]
    return np.array([(landmarks[a, :2] + landmarks[b, :2]) / 2.0 for a, b in pairs])


def test_the_sockets_reach_up_to_the_brows_but_not_into_them(astronaut_landmarks):
    """The strip between the lid's second ring and the brow's lower edge (the shadow a raised
    brow stretches over the driver's lit upper lid) is socket; the brows themselves are not."""
    sock = socket_mask(astronaut_landmarks, (512, 512))
    for x, y in np.rint(_strip_points(astronaut_landmarks)).astype(int):
        assert sock[y, x] == 1, (x, y)
    tris = sockets.socket_triangles()
    lower, upper = sockets._brow_rows()
    assert not (lower | upper)[tris].all(1).any()                     # no triangle of the brow strip
    brow_strip = [t for t in topology.face_triangles() if (lower | upper)[t].all()]
    for t in brow_strip:
        x, y = np.rint(astronaut_landmarks[list(t), :2].mean(0)).astype(int)
        assert sock[y, x] == 0, t


def _paint(shape, landmarks, triangles) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for t in triangles:
        cv2.fillConvexPoly(m, np.rint(landmarks[t, :2]).astype(np.int32), 1)
    return m > 0


def test_a_shadow_under_the_brow_darker_than_a_lash_is_lifted(flat_face, astronaut_landmarks):
    """A painting's shadow from the lid up to the brow, darker than DARK of the skin but away
    from the lid line and the brow hairs, is shadow: measured and lifted (at most MAX_GAIN),
    the strip just under the brow (which a raised brow stretches most) too; the lashes and the
    brows, as dark, keep their darkness. (The mask stopped two rings above the lid and took any
    pixel under DARK for a lash: 27 -> 28 L* here, now 27 -> 40.) At twice the astronaut's size
    (120 px an interocular), measured at WORK_IOD."""
    flat_face = cv2.resize(flat_face, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    lm = astronaut_landmarks * np.array([2.0, 2.0, 1.0])
    iod = float(np.linalg.norm(lm[33, :2] - lm[263, :2]))
    shape = flat_face.shape[:2]
    tris = topology.face_triangles()
    near = _ring(np.flatnonzero(sockets._contour()), tris, 2)
    lower = np.zeros(topology.N_LANDMARKS, bool)
    lower[list(topology.RIGHT_BROW[:5]) + list(topology.LEFT_BROW[:5])] = True
    brow = np.zeros(topology.N_LANDMARKS, bool)
    brow[list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)] = True
    eyes = sockets.eye_openings(lm, shape) > 0
    between = _paint(shape, lm, tris[(near | lower)[tris].all(1) & ~brow[tris].all(1)]) & ~eyes
    strip = _paint(shape, lm, tris[(near | lower)[tris].all(1) & lower[tris].any(1) & ~brow[tris].all(1)]) & ~eyes
    brows = np.zeros(shape, np.uint8)
    for b in (topology.RIGHT_BROW, topology.LEFT_BROW):
        cv2.fillPoly(brows, [np.rint(lm[list(b[:5]) + list(b[:4:-1]), :2]).astype(np.int32)], 1)
    lash = np.zeros(shape, np.uint8)
    for upper in (topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER):
        cv2.polylines(lash, [np.rint(lm[list(upper), :2]).astype(np.int32)], False, 1, 3)
    photo = flat_face.astype(np.float32)
    photo[between] *= 0.42 * np.array([1.0, 0.8, 0.75], np.float32)
    photo[brows > 0] = (60, 45, 35)                                   # brow hairs
    photo[lash > 0] = 25.0                                            # lashes
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    out = lift_sockets(photo, lm)
    before, after = lab(photo), lab(out)

    def grown(mask, reach):
        r = int(round(reach * iod))
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(mask.astype(np.uint8), k) > 0

    shadow = between & ~(grown(eyes, 0.07) | grown(brows, 0.05))
    strip &= shadow
    assert strip.sum() > 50 and shadow.sum() > 150
    skin = lab(flat_face)[between][:, 0].mean()
    for region in (shadow, strip):
        l0, l1 = before[region][:, 0].mean(), after[region][:, 0].mean()
        assert l0 < sockets.DARK * skin                                 # as dark as a lash
        assert l1 > l0 * 1.35 and l1 - l0 > 0.3 * (REFERENCE * skin - l0), (l0, l1, skin)
        assert (after[region][:, 0] <= before[region][:, 0] * sockets.MAX_GAIN + 1.0).all()
    # the brows stay as they are (but for the lift's feathered edge); the lashes stay dark
    core = (brows > 0) & ~grown(between, 0.02)
    assert core.sum() > 200
    assert np.median(after[core][:, 0] - before[core][:, 0]) < 0.5
    assert (after[core][:, 0] <= before[core][:, 0] * 1.2 + 1.0).all()
    assert after[lash > 0][:, 0].mean() < 0.6 * after[shadow][:, 0].mean()


def test_a_highlight_in_a_shaded_socket_is_not_lifted_past_the_skin(flat_face, astronaut_landmarks):
    """The socket's lift is one smooth factor, but a lid's highlight (here as light as the skin
    itself) inside a shaded socket is not multiplied past the skin's lightness into white."""
    lm = astronaut_landmarks
    photo, sock, _ = shaded(flat_face, lm, darker=0.5)
    streak = np.zeros(photo.shape[:2], np.uint8)
    for upper in (topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER):
        cv2.polylines(streak, [np.rint(lm[list(upper)[2:-2], :2] - [0, 4]).astype(np.int32)], False, 1, 1)
    streak = (streak > 0) & sock
    photo[streak] = flat_face[streak]                    # the skin's own colour: a highlight
    out = lift_sockets(photo, lm)
    assert out is not photo and streak.sum() > 10
    skin = lab(flat_face)[streak][:, 0].mean()
    assert lab(out)[streak][:, 0].max() <= skin + 1.0
    assert (lab(out)[streak][:, 0] >= lab(photo)[streak][:, 0] - 0.5).all()


def test_lifted_lightness_is_capped_at_the_skin_unless_lighter_already():
    l = np.array([20.0, 50.0, 70.0, 90.0], np.float32)
    got = sockets.lifted_lightness(l, np.full(4, 1.5, np.float32), np.full(4, 60.0, np.float32))
    np.testing.assert_allclose(got, [30.0, 60.0, 70.0, 90.0])


def test_a_lid_shaded_as_a_whole_is_lifted_and_its_lashes_stay_dark(flat_face, astronaut_landmarks):
    """s5's painted upper lids: the lid between the lash line and the crease is in shade over its
    whole width, darker (0.36 of the skin here) than the socket round it (0.7). Measured against
    the skin it was darker than a lash would be, so it was left out of the measure and lifted
    only with the lighter socket's factor (23 -> 27 L*), a dark band round the driver's eyes;
    measured against the socket's own light round it, it is shade (23 -> 41). The lash line,
    thin and far darker, is not measured and stays dark."""
    lm = astronaut_landmarks
    photo = flat_face.astype(np.float32)
    sock = socket_mask(lm, photo.shape[:2]) > 0
    iod = float(np.linalg.norm(lm[33, :2] - lm[263, :2]))
    eyes = sockets.eye_openings(lm, photo.shape[:2])
    r = int(round(sockets.LASH_REACH * iod))
    lid = (cv2.dilate(eyes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0) & sock
    lash = np.zeros(photo.shape[:2], np.uint8)
    for upper in (topology.RIGHT_EYE_UPPER, topology.LEFT_EYE_UPPER):
        cv2.polylines(lash, [np.rint(lm[list(upper), :2]).astype(np.int32)], False, 1, 1)
    tint = np.array([1.0, 0.8, 0.75], np.float32)
    photo[sock] *= 0.7 * tint
    photo[lid] = flat_face[lid].astype(np.float32) * 0.36 * tint
    photo[lash > 0] = 12.0
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    out = lift_sockets(photo, lm)
    before, after = lab(photo), lab(out)
    shade = lid & ~(cv2.dilate(lash, np.ones((3, 3), np.uint8)) > 0) & (eyes == 0)
    assert shade.sum() > 150
    l0, l1 = before[shade][:, 0].mean(), after[shade][:, 0].mean()
    assert l0 < 0.45 * lab(flat_face)[sock][:, 0].mean()          # as dark as a lash, against the skin
    assert l1 > 1.5 * l0, (l0, l1)
    assert (after[shade][:, 0] <= before[shade][:, 0] * sockets.MAX_GAIN + 1.0).all()
    assert after[lash > 0][:, 0].mean() < 0.5 * l1


def test_feathered_is_full_up_to_the_edge_of_a_thin_strip():
    """A strip 5 px tall (a socket at the work scale) has full weight through it, its edge rows
    too (its blur alone: 0.95 in the middle, 0.65 on the edge rows), and fades out beyond it."""
    mask = np.zeros((40, 40), np.uint8)
    mask[18:23, 5:35] = 1
    w = sockets.feathered(mask, 1.3)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[18:23, 10:30], 1.0)
    column = w[:, 20]
    assert 0.0 < column[16] < column[17] < 1.0 and 0.0 < column[24] < column[23] < 1.0
    assert (w[:13] < 0.01).all() and (w[28:] < 0.01).all()


def test_socket_lightness_leaves_out_hair_darker_than_the_sockets_light_round_it():
    """`socket_lightness`' weight: in the hair zone a thin line darker than `DARK` of the socket's
    light round it (a lash: 18 L* in a socket of 40) is left out of the measure, the same line
    outside the hair zone (a crease's shadow) is measured, and so is a lid shaded as a whole in
    the hair zone (26 L*: darker than 0.45 of the skin's 60, but not much darker than the socket
    round it). Anywhere, what is darker than `BLACK` of the skin is left out."""
    shape = (40, 60)
    lab_img = np.zeros(shape + (3,), np.float32)
    lab_img[..., 0] = 40.0
    lab_img[10, 5:25] = 18.0                    # a lash, in the hair zone
    lab_img[10, 35:55] = 18.0                   # the same line outside it
    lab_img[20:26, 5:25, 0] = 26.0              # a lid in shade, in the hair zone
    lab_img[32, 5:55, 0] = 10.0                 # darker than BLACK of the skin
    hair = np.zeros(shape, np.uint8)
    hair[:, :30] = 1
    light, weight = sockets.socket_lightness(lab_img, np.ones(shape, np.uint8), np.full(shape, 60.0, np.float32),
                                             hair, 3.0)
    assert light.shape == shape + (3,) and weight.dtype == np.float32
    assert (weight[10, 5:25] == 0).all()
    assert (weight[10, 35:55] == 1).all()
    assert (weight[20:26, 5:25] == 1).all()
    assert (weight[32, 5:55] == 0).all()
