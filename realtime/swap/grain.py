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
nothing past the outline). A clean photo is returned as it is, the same array, so a swap of it
is unchanged. Only the photo is evened: an atlas profile's keyframes are used as they are.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.colour import LUMA

__all__ = ["MIN_SIGMA", "STRENGTH", "WORK_SIZE", "LIT_SHARE", "SHADOW_SPAN", "SHADE_SIGMA", "MARGIN",
           "noise_sigma", "even_grain"]

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

# Immerkær (1996): this kernel cancels a locally planar image; Gaussian noise of σ gives
# responses of σ·6, whose median absolute value is 0.6745·6σ.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_NOISE_MEDIAN = 0.6745 * 6.0


def noise_sigma(gray: np.ndarray, mask: np.ndarray) -> float:
    """The noise σ (grey levels) of a float32 (H, W) image over `mask` (H, W) > 0."""
    response = np.abs(cv2.filter2D(gray, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT_101))
    inside = response[mask > 0]
    return float(np.median(inside)) / _NOISE_MEDIAN if inside.size else 0.0


def _face_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.rint(points).astype(np.int32)), 1)
    return mask


def even_grain(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """`photo` (H, W, 3) uint8 with the grain of the face given by `landmarks` (478, 2+) in photo
    px evened; `photo` itself when its face's noise σ is below `MIN_SIGMA`. Pixels farther than
    `MARGIN` interoculars from the face's landmarks are never changed."""
    photo = np.asarray(photo)
    pts = np.asarray(landmarks, np.float64)[:468, :2]
    iod = float(np.linalg.norm(pts[33] - pts[263]))
    h_img, w_img = photo.shape[:2]
    lo = np.floor(np.maximum(pts.min(0) - MARGIN * iod, 0)).astype(int)
    hi = np.ceil(np.minimum(pts.max(0) + MARGIN * iod, (w_img, h_img))).astype(int)
    if iod < 4.0 or np.any(hi - lo < 8):
        return photo
    box = photo[lo[1]:hi[1], lo[0]:hi[0]]
    mask = _face_mask(pts - lo, box.shape[:2])
    gray = box.astype(np.float32) @ LUMA
    if noise_sigma(gray, mask) < MIN_SIGMA:
        return photo
    # the denoiser works on at most WORK_SIZE px a side (a large photo's face: its grain is
    # finer than the swap's texture keeps anyway), at a strength from the noise at that scale
    k = min(1.0, WORK_SIZE / max(box.shape[:2]))
    if k < 1.0:
        size = (max(8, round(box.shape[1] * k)), max(8, round(box.shape[0] * k)))
        small = cv2.resize(box, size, interpolation=cv2.INTER_AREA)
        mask = _face_mask((pts - lo) * k, small.shape[:2])
        gray = small.astype(np.float32) @ LUMA
    else:
        small = np.ascontiguousarray(box)
    strength = STRENGTH * noise_sigma(gray, mask)
    # (cv2's colour denoiser works in its Lab, from BGR)
    clean = cv2.fastNlMeansDenoisingColored(small[..., ::-1].copy(), None, strength, strength, 5, 15)[..., ::-1]
    # how much: all of it on the shadowed skin, LIT_SHARE on the lit side, fading out just
    # outside the outline (the swap shows nothing past it; bilinear lookups near it read there)
    m = mask.astype(np.float32)
    s = SHADE_SIGMA * iod * k
    shade = cv2.GaussianBlur(gray * m, (0, 0), s) / np.maximum(cv2.GaussianBlur(m, (0, 0), s), 1e-3)
    lit = float(np.percentile(shade[mask > 0], 90))
    shadow = np.clip((lit / np.maximum(shade, 1.0) - 1.0) / SHADOW_SPAN, 0.0, 1.0)
    inside = np.minimum(2.0 * cv2.GaussianBlur(m, (0, 0), 0.1 * iod * k), 1.0)
    weight = (LIT_SHARE + (1.0 - LIT_SHARE) * shadow) * inside
    change = weight[..., None] * (clean.astype(np.float32) - small.astype(np.float32))
    if k < 1.0:
        change = cv2.resize(change, (box.shape[1], box.shape[0]), interpolation=cv2.INTER_LINEAR)
    out = photo.copy()
    out[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(np.rint(box.astype(np.float32) + change), 0, 255).astype(np.uint8)
    return out

