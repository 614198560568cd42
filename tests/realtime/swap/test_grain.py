"""realtime.swap.grain: a grainy photo's face is evened (more where it is shadowed), and so is a
blotchy one whose pixels read clean (its skin's mottle); a clean one is left as it is, nothing
outside the face changes, and the swap renders from the evened photo."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.frame import Frame
from realtime.engine.loop import Engine, EngineOptions
from realtime.face import topology
from realtime.image.disclose import DisclosureOptions
from realtime.swap import grain
from realtime.swap.grain import MARGIN, MIN_MOTTLE, MIN_SIGMA, even_grain, mottle_sigma, noise_sigma

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


def blotchy(image, seed=0, amount=10.0, block=4):
    """`image` with a random level added per `block`-px square: a compressed painting's blotches,
    flat inside (a JPEG's blocks), about a fifteenth of the astronaut's interocular wide (s5's
    8 px blocks on its 92 px interocular)."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    field = np.kron(rng.normal(0.0, amount, (-(-h // block), -(-w // block))), np.ones((block, block)))[:h, :w]
    return np.clip(np.rint(image.astype(np.float64) + field[..., None]), 0, 255).astype(np.uint8)


def cheeks_and_forehead(landmarks, shape):
    """(H, W) bool: discs on both cheeks and the forehead, an eighth of an interocular across."""
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    iod = np.linalg.norm(pts[33] - pts[263])
    mask = np.zeros(shape, np.uint8)
    for point in (205, 425, 151):
        cv2.circle(mask, tuple(int(v) for v in np.rint(pts[point])), int(round(0.125 * iod)), 1, -1)
    return mask > 0


def fine_contrast(image, landmarks):
    """The skin's fine-scale lightness contrast: the robust σ (1.4826 MAD) of CIE L* band-passed
    between 0.01 and 0.04 interoculars (a blotch a few crop px wide), on the cheeks and forehead."""
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    iod = np.linalg.norm(pts[33] - pts[263])
    lightness = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]
    band = cv2.GaussianBlur(lightness, (0, 0), 0.01 * iod) - cv2.GaussianBlur(lightness, (0, 0), 0.04 * iod)
    band = band[cheeks_and_forehead(landmarks, image.shape[:2])]
    return 1.4826 * float(np.median(np.abs(band - np.median(band))))


def hull(points, indices, shape):
    """(H, W) bool: the convex hull of `points[indices]`."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(points[list(indices)]).astype(np.int32)), 1)
    return mask > 0


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


def test_a_blotchy_skin_is_evened_though_its_pixels_read_clean(astronaut_rgb, astronaut_landmarks):
    # flat blocks: the pixel-level estimate (a median of a 3x3 kernel's response, zero inside a
    # block) reads the photo as clean; measured where the swap shows it, its skin is mottled
    photo = blotchy(cv2.GaussianBlur(astronaut_rgb, (0, 0), 1.5))
    assert sigma(photo, astronaut_landmarks) < MIN_SIGMA
    before = mottle_sigma(photo, astronaut_landmarks)
    assert before > MIN_MOTTLE
    out = even_grain(photo, astronaut_landmarks)
    assert out is not photo and out.shape == photo.shape and out.dtype == np.uint8
    # (measured: the mottle 0.64 of it, 0.41-0.64 over blotches of seeds 0-7; the cheeks' and
    # forehead's fine-scale contrast 0.73 of it, 0.61-0.86 over seeds 0-9: a few dozen blocks)
    assert mottle_sigma(out, astronaut_landmarks) < 0.75 * before
    assert fine_contrast(out, astronaut_landmarks) < 0.9 * fine_contrast(photo, astronaut_landmarks)
    far = outside_box(photo, astronaut_landmarks)
    np.testing.assert_array_equal(out[far], photo[far])
    # the eyes, the brows and the lips keep their own pixels (the identity's features)
    pts = astronaut_landmarks[:468, :2]
    for part in (topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER, topology.RIGHT_BROW,
                 topology.LEFT_EYE_UPPER + topology.LEFT_EYE_LOWER, topology.LEFT_BROW, topology.OUTER_LIP):
        inside = hull(pts, part, photo.shape[:2])
        np.testing.assert_array_equal(out[inside], photo[inside])
    # and the evening fades in beside them, not at a step: a tenth of an interocular out it is
    # part-way (measured: 0.43 of the skin's farther out, 0.42-0.52 over seeds 0-7; a step at the
    # features' edge gave about 0.9-1.0)
    kept = np.zeros(photo.shape[:2], bool)
    for part in (topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER + topology.RIGHT_BROW,
                 topology.LEFT_EYE_UPPER + topology.LEFT_EYE_LOWER + topology.LEFT_BROW, topology.OUTER_LIP):
        kept |= hull(pts, part, photo.shape[:2])
    iod = np.linalg.norm(pts[33] - pts[263])
    away = cv2.distanceTransform((~kept).astype(np.uint8), cv2.DIST_L2, 5) / iod
    skin = cv2.erode(hull(pts, topology.FACE_OVAL, photo.shape[:2]).astype(np.uint8),
                     np.ones((2 * round(0.15 * iod) + 1,) * 2, np.uint8)) > 0
    change = np.abs(out.astype(np.float32) - photo.astype(np.float32)).mean(2)
    fading = change[skin & (away >= 0.08) & (away < 0.11)].mean()
    evened = change[skin & (away >= 0.2) & (away < 0.4)].mean()
    assert 0.2 * evened < fading < 0.7 * evened


def test_a_blotchy_photo_swapped_onto_a_larger_face_is_no_blotchier_than_the_photo(astronaut_rgb,
                                                                                  astronaut_landmarks):
    """s5 (a 720 px painting, its JPEG blotches read clean by the pixel-level estimate) on d14's
    face twice its size showed them as brown speckles over the cheeks: the swap shows the
    photo's skin detail as it is, and the photo's blotches were detail. Here a blotchy photo
    drives itself at twice its size (the gain and colour table are ~1): the swapped skin's
    fine-scale contrast, measured at the face's own scale, is well under the photo's (measured:
    0.68 of it; 0.83 before its mottle was evened, the interpolation's blur alone)."""
    from profiles.enroll import build_profile

    photo = blotchy(cv2.GaussianBlur(astronaut_rgb, (0, 0), 1.5))
    landmarks = np.array(astronaut_landmarks)
    profile = build_profile(photo, landmarks, name="blotchy", source="test")
    driver = cv2.resize(cv2.GaussianBlur(astronaut_rgb, (0, 0), 1.5), None, fx=2.0, fy=2.0,
                        interpolation=cv2.INTER_CUBIC)
    at = landmarks.astype(np.float32).copy()
    at[:, :2] = (at[:, :2] + 0.5) * 2.0 - 0.5
    at[:, 2] *= 2.0
    engine = Engine(profile, EngineOptions(
        mode="swap", output_size=(driver.shape[1], driver.shape[0]), fps=30.0, kernel_threads=1,
        disclosure=DisclosureOptions(label=False, mark=False)))
    engine.warm_up()
    for i in range(3):
        frame = Frame(index=i, t_capture=i / 30.0, image=driver, landmarks=at, tracked=True)
        engine.process(frame)
    assert fine_contrast(frame.output, at) < 0.75 * fine_contrast(photo, landmarks)
