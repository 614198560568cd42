"""realtime.swap.glasses: thin rims drawn round the astronaut's eyes are found and masked where
they are as her head moves; her bare face, a step edge and a line that does not stay put are not
glasses; in the swap the rims' pixels are the driver's own."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.face import topology as T
from realtime.swap.glasses import EVERY_LEARNING, FOUND, LEARN, MIN_LOOKS, GlassesRims, closed_path, line_strength

EYES = (list(T.RIGHT_EYE_UPPER + T.RIGHT_EYE_LOWER), list(T.LEFT_EYE_UPPER + T.LEFT_EYE_LOWER))


def eye_centres(lm):
    return [lm[e, :2].mean(0) for e in EYES]


def with_rims(rgb, lm, radius=0.45, shade=0.7, width=2):
    """`rgb` with round rims (and a bridge) drawn round the eyes: `radius` × the distance between
    the eyes' centres, `shade` × the skin under them (a faint metal rim), `width` px; and the
    (H, W) bool of the rims' pixels."""
    out = rgb.copy()
    rims = np.zeros(rgb.shape[:2], np.uint8)
    c = eye_centres(lm)
    r = radius * float(np.linalg.norm(c[1] - c[0]))
    for e in c:
        cv2.ellipse(rims, (int(round(e[0] * 4)), int(round(e[1] * 4))), (int(r * 4), int(r * 0.85 * 4)),
                    0, 0, 360, 1, width, cv2.LINE_AA, shift=2)
    blur = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), 6)
    on = rims > 0
    out[on] = np.clip(blur[on] * shade, 0, 255).astype(np.uint8)
    return out, on


def moved(rgb, lm, angle, shift):
    """The image and its landmarks rotated by `angle` degrees about the face and shifted."""
    centre = tuple(float(v) for v in lm[:, :2].mean(0))
    a = cv2.getRotationMatrix2D(centre, angle, 1.0)
    a[:, 2] += shift
    img = cv2.warpAffine(rgb, a, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = lm.copy()
    out[:, :2] = lm[:, :2] @ a[:, :2].T + a[:, 2]
    return img, out


def gray(rgb):
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module", params=[1, 2], ids=["1x", "2x"])
def face(request, astronaut_rgb, astronaut_landmarks):
    """The astronaut at 1× (her interocular 61 px) and 2× (122 px: the look is scaled down)."""
    k = request.param
    img = cv2.resize(astronaut_rgb, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) if k > 1 else astronaut_rgb
    lm = np.array(astronaut_landmarks, np.float64)
    lm *= k
    return img, lm


def full_mask(rims, lm, shape):
    """`rims.mask` with the crop = the frame (identity map), spread over the whole frame."""
    size = max(shape[:2])
    values, (y0, y1, x0, x1) = rims.mask(lm, np.array([[1.0, 0, 0], [0, 1.0, 0]]), size)
    out = np.zeros((size, size), np.float32)
    out[y0:y1, x0:x1] = values
    return out[:shape[0], :shape[1]]


def head_motion(n):
    """Small turns and shifts, as a webcam's face makes them."""
    t = np.arange(n)
    return list(zip(3.0 * np.sin(t / 3.0), np.stack([6.0 * np.sin(t / 4.0), 4.0 * np.cos(t / 5.0)], 1)))


def test_rims_are_found_and_masked_where_they_are_as_the_head_moves(face):
    img, lm = face
    width = 2       # px: a thin metal rim (d19's are about 0.025 of his eyes' distance, 2.4 px here at 2×)
    glasses, _ = with_rims(img, lm, width=width)
    rims = GlassesRims()
    frames = [moved(glasses, lm, a, s) for a, s in head_motion(MIN_LOOKS + 6)]
    for i, (im, l) in enumerate(frames):
        rims.observe(gray(im), l)
        assert rims.found == (i + 1 >= MIN_LOOKS and rims.score >= FOUND)
    assert rims.found and rims.score > 2 * FOUND
    for angle, shift in ((2.0, (5.0, -3.0)), (-3.0, (-8.0, 6.0))):
        im, l = moved(img, lm, angle, shift)
        _, on = with_rims(im, l, width=width)
        m = full_mask(rims, l, im.shape)
        assert np.mean(m[on] > 0.5) > 0.8                      # the rims are covered ...
        near = cv2.dilate(on.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert np.mean(m[~near] > 0.2) < 0.002                 # ... and little else


def test_a_bare_face_is_not_glasses(face):
    img, lm = face
    rims = GlassesRims()
    for a, s in head_motion(LEARN):
        rims.observe(gray(moved(img, lm, a, s)[0]), moved(img, lm, a, s)[1])
    assert not rims.found and rims.score < 0.5 * FOUND
    assert rims.mask(lm, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 512) is None


def test_a_loop_round_one_eye_is_not_glasses(face):
    """Both lower arcs must read as rims (a scar, a monocle's shadow or one eye's deep fold under
    one eye is not a pair of glasses)."""
    img, lm = face
    glasses, on = with_rims(img, lm, width=2 * (img.shape[0] // 512))
    half = np.zeros_like(on)
    half[:, : int(lm[:, 0].mean())] = True          # the image's left half: one eye's rim only
    one = np.where((on & half)[..., None], glasses, img)
    rims = GlassesRims()
    for a, s in head_motion(LEARN):
        im, l = moved(one, lm, a, s)
        rims.observe(gray(im), l)
    assert not rims.found


def test_the_rims_are_forgotten_on_reset(face):
    img, lm = face
    glasses, _ = with_rims(img, lm, width=2 * (img.shape[0] // 512))
    rims = GlassesRims()
    for _ in range(MIN_LOOKS):
        rims.observe(gray(glasses), lm)
    assert rims.found
    rims.reset()
    assert not rims.found and rims.looks == 0 and rims.mask(lm, np.eye(2, 3), 64) is None


def test_line_strength_reads_a_thin_line_not_an_edge():
    img = np.full((64, 96), 150.0, np.float32)
    img[:, 48:] = 90.0                     # a step edge at x = 48
    img[30, :40] = 110.0                   # a thin dark line at y = 30, left of it
    y = np.array([30.0, 20.0, 20.0, 20.0, 20.0, 50.0], np.float32)
    x = np.array([20.0, 46.0, 47.5, 49.0, 50.0, 20.0], np.float32)
    s = line_strength(img, x, y)
    assert s[0] > 5.0                                  # on the line
    assert np.all(s[1:5] < 0.1 * s[0])                 # on and beside the edge
    assert s[5] == 0.0                                 # flat
    # per cent of the local luma: the same line on darker skin reads about the same
    assert line_strength(img * 0.5, x[:1], y[:1])[0] == pytest.approx(s[0], rel=0.1)


def test_closed_path_follows_a_ridge_round_the_loop():
    rng = np.random.default_rng(1)
    k, n = 72, 40
    truth = np.round(20 + 5 * np.sin(np.linspace(0, 2 * np.pi, k, endpoint=False) * 2)).astype(int)
    score = rng.uniform(0, 1, (k, n))
    score[np.arange(k), truth] += 3.0
    path = closed_path(score)
    assert path.shape == (k,) and np.all(np.abs(path - truth) <= 1)
    assert np.all(np.abs(np.diff(np.r_[path, path[0]])) <= 1)     # smooth, and closed


@pytest.mark.tracking
def test_the_swap_shows_the_drivers_own_rims(astronaut_profile, astronaut_rgb, astronaut_landmarks):
    """End to end: the astronaut (mirrored, recoloured: another-looking driver) with rims drawn
    swapped with her own profile: with keep_glasses the output's rim pixels are the driver's,
    without they are painted over (the stage looks every EVERY_LEARNING frames at first)."""
    from tests.realtime.engine.test_swap import run, swap_engine

    driver = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    driver = np.clip(driver.astype(np.int16) + np.array([-20, 10, 25]), 0, 255).astype(np.uint8)
    lm = np.array(astronaut_landmarks, np.float64)
    lm[:, 0] = astronaut_rgb.shape[1] - 1 - lm[:, 0]
    lm = lm[T.MIRROR]
    glasses, on = with_rims(driver, lm, shade=0.8)
    n = EVERY_LEARNING * MIN_LOOKS + 2
    outs = {}
    for keep in (True, False):
        engine = swap_engine(astronaut_profile, keep_glasses=keep)
        outs[keep] = run(engine, [glasses] * n)[-1].output
        assert ("glasses" in [s.name for s in engine.stages]) == keep
        engine.close()
    def same(out):
        return (np.abs(out[on].astype(int) - glasses[on]).max(1) <= 3).mean()
    kept, painted = same(outs[True]), same(outs[False])
    assert kept > 0.6 and painted < 0.2, (kept, painted)
