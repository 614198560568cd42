"""The identity photo's grain, evened before a swap brightens it.

The swap keeps the identity's detail by multiplying its render with a gain field
(`realtime.swap.colour`): right for features and skin texture, which scale with the light, but
also for a photo's noise — film grain, sensor noise, JPEG blocks — which does not. Where the
driver's light is brighter than the photo's, most of all over the photo's shadowed side, that
noise comes out as a dark speckle: s12 (an old, grainy portrait) swapped into d14's evenly lit
face showed its shadowed cheek as grey-black dots that no one sees on the photo.

`even_grain` measures the noise of the photo's face (Immerkær's estimate, robust: the median
over the face's hull) and, when there is some (`MIN_SIGMA`), non-local-means denoises the face:
fully over the shadowed skin (where the gain will be largest), by `LIT_SHARE` over the lit side,
fading out within about a quarter of an interocular outside the face's outline (the swap shows
nothing past the outline).

A photo can be clean at its own pixels and still blotchy where the swap shows it. The swap draws
the face into its crop (256 px: s5's face 76 px an interocular there) and pastes it about 2.3×
larger onto a webcam face (d14: 176 px), so a photo whose face is near the crop's density keeps
its skin's blotches a few photo px wide — a painting's brushwork, a small JPEG's 8 px blocks —
and the paste-back magnifies them: s5 (a 720 px Bouguereau, 92 px an interocular) on d14 showed
brown speckles over the cheeks, forehead and chin. The pixel-level estimate does not count them:
its median reads the inside of a flat block as clean (s5: 0.49). Nor is the swap what makes
them: driving s5 with its own photo at twice its size (gain and colour table ≈ 1) gives back the
photo's blotches as they are (the skin's fine-scale lightness contrast — CIE L* band-passed
0.01–0.04 interoculars — 0.85 against the photo's 0.93), and switching the colour table and the
gain off one at a time moves that contrast by −8 % (d10) to +12 % (d14, the table's brightening)
while it halves the blotches' colour (a*, b*): with both, 0.95 on either driver, against the
driver's own skin's 0.26 (d14) and 0.68 (d10); on the paler, smoother driver skin they read as
dirt.

So a photo whose skin is clean at its pixels is measured again at half the crop's density
(`mottle_sigma`: the eval's photos 0.35–0.55, s5 0.71, s1 1.05; the drivers' faces 0.25–0.9, d13
up to 1.3) and, past `MIN_MOTTLE`, its face is denoised as a grainy one is, at a strength from
that mottle, over all of its skin (the colour transfer pales the lit side as the gain lifts the
shadowed one); its eyes, brows and lips keep their own pixels. s5 ← d14: that contrast 0.95 →
0.51, d10 0.95 → 0.61, d19 0.87 → 0.65 (frame 69).

A clean photo is returned as it is, the same array, so a swap of it is unchanged. Only the
photo is evened: an atlas profile's keyframes are used as they are.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.colour import LUMA
from realtime.face import geometry, topology

__all__ = ["MIN_SIGMA", "STRENGTH", "WORK_SIZE", "LIT_SHARE", "SHADOW_SPAN", "SHADE_SIGMA", "MARGIN",
           "MOTTLE_IOD", "MIN_MOTTLE", "MOTTLE_STRENGTH", "noise_sigma", "skin_mask", "mottle_sigma", "even_grain"]

#: A photo whose face's noise σ (grey levels, at the photo's own resolution) is below this is
#: left as it is. Measured: the eval's clean photos and the drivers' frames 0.4–0.75 (s0 the
#: most), s12 (a grainy scan) 1.98, s9 (a painting's craquelure) 3.1.
MIN_SIGMA = 1.2
#: The denoiser's filter strength (cv2's h) per grey level of the noise σ at its working scale.
STRENGTH = 2.5
#: The denoiser's working size (px, the face's box's longer side): 0.1–0.3 s, once per engine.
WORK_SIZE = 400
#: Share of the denoising kept on the photo's lit skin (its shadowed skin gets all of it).
LIT_SHARE = 0.3
#: The skin is "shadowed" (all of the denoising) where its shade is this much darker than the
#: lit side's: lit / shade − 1 ≥ SHADOW_SPAN.
SHADOW_SPAN = 0.5
#: The shading's blur, in interoculars (the scale of the lighting, not of the features).
SHADE_SIGMA = 0.25
#: The face's box grows by this many interoculars on each side (the outline's feather inside it).
MARGIN = 0.5

#: The skin's mottle is its noise σ measured with the face resampled to this many px an
#: interocular: about half the swap crop's density (a 256 px crop holds ~76 px an interocular),
#: where a blotch a few crop px wide — which the paste-back magnifies about 2× onto a
#: webcam-sized face — is a pixel-level speckle.
MOTTLE_IOD = 38.0
#: A photo whose skin's mottle σ (grey levels, at MOTTLE_IOD) is at least this has its face
#: evened by it even where its own pixels are clean. Measured: s32 0.35, s0 0.52, s18 0.55 (left
#: as they are); s5 0.71, s1 1.05 (evened; s9 1.6 and s12 1.4 are grainy already). A real skin's
#: fine texture reads as mottle too: the drivers' frames taken as photos (every 25th) read d0
#: 0.68–0.89, d13 0.79–1.29, d19 0.57–0.76 and are evened (pores, fine wrinkles, glasses' rims
#: softened); d10, d11, d14 0.23–0.38.
MIN_MOTTLE = 0.6
#: The denoiser's filter strength (cv2's h) per grey level of the mottle σ: s5's 3.5 takes its
#: blotches off (its mottle 0.71 → 0.37); at 7–10 the skin turns waxy.
MOTTLE_STRENGTH = 5.0
#: The skin measured for the mottle: the face's outline shrunk, the eyes and brows, the lips and
#: the nose's lower part grown, by this many interoculars.
SKIN_INSET = 0.12
#: The eyes and brows and the lips keep their own pixels, and fade into the evened skin over this
#: many interoculars.
FEATURE_GROW = 0.05
_NOSE_LOW = (4, 48, 64, 98, 97, 2, 326, 327, 294, 278)
_FEATURES = (topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER + topology.RIGHT_BROW,
             topology.LEFT_EYE_UPPER + topology.LEFT_EYE_LOWER + topology.LEFT_BROW,
             topology.OUTER_LIP, _NOSE_LOW)

# Immerkær (1996): this kernel cancels a locally planar image; Gaussian noise of σ gives
# responses of σ·6, whose median absolute value is 0.6745·6σ.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_NOISE_MEDIAN = 0.6745 * 6.0


def noise_sigma(gray: np.ndarray, mask: np.ndarray) -> float:
    """The noise σ (grey levels) of a float32 (H, W) image over `mask` (H, W) > 0."""
    response = np.abs(cv2.filter2D(gray, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT_101))
    inside = response[mask > 0]
    return float(np.median(inside)) / _NOISE_MEDIAN if inside.size else 0.0


def _hulls(groups, pts: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) uint8, 1 inside the convex hull of each group of `pts`' indices."""
    mask = np.zeros(shape, np.uint8)
    for idx in groups:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(pts[list(idx)]).astype(np.int32)), (1,))
    return mask


def _face_mask(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return _hulls((range(len(points)),), points, shape)


def _square(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return np.ones((2 * r + 1, 2 * r + 1), np.uint8)


def skin_mask(points: np.ndarray, shape: tuple[int, ...], iod: float) -> np.ndarray:
    """(H, W) uint8, 1 on the face's bare skin: inside its outline (`points` (468+, 2) px) shrunk,
    and away from the eyes and brows, the lips and the nose's lower part, by `SKIN_INSET`
    interoculars (`iod` px)."""
    grow = _square(SKIN_INSET * iod)
    face = cv2.erode(_hulls((topology.FACE_OVAL,), points, shape), grow)
    features = cv2.dilate(_hulls(_FEATURES, points, shape), grow)
    return ((face > 0) & (features == 0)).astype(np.uint8)


def mottle_sigma(photo: np.ndarray, landmarks: np.ndarray) -> float:
    """The mottle σ (grey levels) of the face's skin in `photo` (H, W, 3) uint8, given by its
    `landmarks` (478, 2+) px: Immerkær's noise estimate on the bare skin (`skin_mask`) with the
    face resampled to `MOTTLE_IOD` px an interocular. 0 for a face smaller than that."""
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    iod = geometry.interocular(pts)
    if iod < MOTTLE_IOD:
        return 0.0
    k = MOTTLE_IOD / iod
    h_img, w_img = np.asarray(photo).shape[:2]
    small = cv2.resize(np.asarray(photo), (max(8, round(w_img * k)), max(8, round(h_img * k))),
                       interpolation=cv2.INTER_AREA)
    mask = skin_mask(pts * k, small.shape[:2], MOTTLE_IOD)
    return noise_sigma(small.astype(np.float32) @ LUMA, mask)


def even_grain(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """`photo` (H, W, 3) uint8 with the grain of the face given by `landmarks` (478, 2+) in photo
    px evened: its noise where its noise σ is at least `MIN_SIGMA`, else its skin's mottle where
    that is at least `MIN_MOTTLE` (`mottle_sigma`); `photo` itself when it has neither. Pixels
    farther than `MARGIN` interoculars from the face's landmarks are never changed."""
    photo = np.asarray(photo)
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    iod = geometry.interocular(pts)
    h_img, w_img = photo.shape[:2]
    lo = np.floor(np.maximum(pts.min(0) - MARGIN * iod, 0)).astype(int)
    hi = np.ceil(np.minimum(pts.max(0) + MARGIN * iod, (w_img, h_img))).astype(int)
    if iod < 4.0 or np.any(hi - lo < 8):
        return photo
    box = photo[lo[1]:hi[1], lo[0]:hi[0]]
    mask = _face_mask(pts - lo, box.shape[:2])
    grainy = noise_sigma(box.astype(np.float32) @ LUMA, mask) >= MIN_SIGMA
    mottle = 0.0 if grainy else mottle_sigma(photo, pts)
    if not grainy and mottle < MIN_MOTTLE:
        return photo
    # the denoiser works on at most WORK_SIZE px a side (a large photo's face: its grain is
    # finer than the swap's texture keeps anyway), at a strength from the noise at that scale
    k = min(1.0, WORK_SIZE / max(box.shape[:2]))
    if k < 1.0:
        size = (max(8, round(box.shape[1] * k)), max(8, round(box.shape[0] * k)))
        small = cv2.resize(box, size, interpolation=cv2.INTER_AREA)
        mask = _face_mask((pts - lo) * k, small.shape[:2])
    else:
        small = np.ascontiguousarray(box)
    gray = small.astype(np.float32) @ LUMA
    m = mask.astype(np.float32)
    inside = np.minimum(2.0 * cv2.GaussianBlur(m, (0, 0), 0.1 * iod * k), 1.0)
    strength = STRENGTH * noise_sigma(gray, mask) if grainy else MOTTLE_STRENGTH * mottle
    # (cv2's colour denoiser works in its Lab, from BGR)
    clean = cv2.fastNlMeansDenoisingColored(small[..., ::-1].copy(), None, strength, strength, 5, 15)[..., ::-1]
    if grainy:
        # the face's shading (the scale of its light, not of its features) and its lit side's level
        s = SHADE_SIGMA * iod * k
        shade = cv2.GaussianBlur(gray * m, (0, 0), s) / np.maximum(cv2.GaussianBlur(m, (0, 0), s), 1e-3)
        lit = float(np.percentile(shade[mask > 0], 90))
        # how much: all of it on the shadowed skin, LIT_SHARE on the lit side, fading out just
        # outside the outline (the swap shows nothing past it; bilinear lookups near it read there)
        shadow = np.clip((lit / np.maximum(shade, 1.0) - 1.0) / SHADOW_SPAN, 0.0, 1.0)
        weight = (LIT_SHARE + (1.0 - LIT_SHARE) * shadow) * inside
    else:
        # all of the skin, lit or not (the colour transfer pales it as the gain lifts it); the
        # eyes, brows and lips keep their own pixels
        grow = FEATURE_GROW * iod * k
        features = cv2.dilate(_hulls(_FEATURES[:3], (pts - lo) * k, small.shape[:2]), _square(grow))
        near = cv2.GaussianBlur(features.astype(np.float32), (0, 0), grow)
        weight = inside * (1.0 - np.minimum(2.0 * near, 1.0))
    change = weight[..., None] * (clean.astype(np.float32) - small.astype(np.float32))
    if k < 1.0:
        change = cv2.resize(change, (box.shape[1], box.shape[0]), interpolation=cv2.INTER_LINEAR)
    out = photo.copy()
    out[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(np.rint(box.astype(np.float32) + change), 0, 255).astype(np.uint8)
    return out
