"""realtime.swap.grain: a grainy photo's face is evened (more where it is shadowed), a clean one is
left as it is, nothing outside the face changes, and the swap renders from the evened photo."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.frame import Frame
from realtime.engine.loop import Engine, EngineOptions
from realtime.image.disclose import DisclosureOptions
from realtime.swap import grain
from realtime.swap.grain import MARGIN, MIN_SIGMA, even_grain, noise_sigma

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def face_mask(image, landmarks):
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(landmarks[:468, :2]).astype(np.int32)), 1)
    return mask


def sigma(image, landmarks):
    return noise_sigma(image.astype(np.float32) @ LUMA, face_mask(image, landmarks))


def grainy(image, seed=0, amount=6.0):
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, amount, image.shape[:2])[..., None]
    return np.clip(np.rint(image.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def outside_box(image, landmarks):
    pts = landmarks[:468, :2]
    iod = np.linalg.norm(pts[33] - pts[263])
    lo = np.floor(pts.min(0) - MARGIN * iod - 1).astype(int)
    hi = np.ceil(pts.max(0) + MARGIN * iod + 1).astype(int)
    out = np.ones(image.shape[:2], bool)
    out[max(lo[1], 0):hi[1], max(lo[0], 0):hi[0]] = False
    return out


def test_a_clean_photo_is_left_as_it_is(astronaut_rgb, astronaut_landmarks):
    clean = cv2.GaussianBlur(astronaut_rgb, (0, 0), 1.5)
    assert sigma(clean, astronaut_landmarks) < MIN_SIGMA
    assert even_grain(clean, astronaut_landmarks) is clean


def test_a_grainy_face_is_evened_and_nothing_else_changes(astronaut_rgb, astronaut_landmarks):
    photo = grainy(astronaut_rgb)
    before = sigma(photo, astronaut_landmarks)
    assert before > MIN_SIGMA
    out = even_grain(photo, astronaut_landmarks)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert sigma(out, astronaut_landmarks) < 0.6 * before
    far = outside_box(photo, astronaut_landmarks)
    assert far.sum() > 0.3 * far.size
    np.testing.assert_array_equal(out[far], photo[far])
    # the face's features and light stay: its low-pass moves by a grey level or two and keeps
    # its edges (measured: 1.4 levels, 0.96 of the gradient)
    mask = face_mask(photo, astronaut_landmarks) > 0
    low_in, low_out = (cv2.GaussianBlur(x.astype(np.float32), (0, 0), 3.0).mean(2) for x in (photo, out))
    assert np.abs(low_out - low_in)[mask].mean() < 2.0

    def edges(x):
        return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))[mask].mean()

    assert edges(low_out) > 0.9 * edges(low_in)


def test_the_shadowed_side_is_evened_more_than_the_lit_side(astronaut_rgb, astronaut_landmarks):
    pts = astronaut_landmarks[:468, :2]
    centre = pts[:, 0].mean()
    shade = np.where(np.arange(astronaut_rgb.shape[1]) < centre, 0.45, 1.0)[None, :, None]
    photo = grainy(np.clip(astronaut_rgb * shade, 0, 255).astype(np.uint8), seed=1)
    out = even_grain(photo, astronaut_landmarks)
    mask = face_mask(photo, astronaut_landmarks) > 0
    xx = np.arange(photo.shape[1])[None, :].repeat(photo.shape[0], 0)
    iod = np.linalg.norm(pts[33] - pts[263])
    change = np.abs(out.astype(np.float32) - photo.astype(np.float32)).mean(2)
    shadowed = change[mask & (xx < centre - 0.3 * iod)].mean()
    lit = change[mask & (xx > centre + 0.3 * iod)].mean()
    assert shadowed > 1.5 * lit > 0


def test_the_swap_renders_the_evened_photo(astronaut_profile, astronaut_rgb, monkeypatch):
    def swapped():
        engine = Engine(astronaut_profile, EngineOptions(
            mode="swap", output_size=(512, 512), fps=30.0, kernel_threads=1,
            disclosure=DisclosureOptions(label=False, mark=False)))
        engine.warm_up()
        frame = Frame(index=0, t_capture=0.0, image=astronaut_rgb)
        engine.process(frame)
        return frame.render.copy()

    evened = swapped()
    monkeypatch.setattr(grain, "even_grain", lambda photo, landmarks: photo)
    raw = swapped()
    assert np.abs(evened.astype(np.float32) - raw.astype(np.float32)).mean() > 0.1
