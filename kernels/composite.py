"""`composite`: paste a generated face crop back into the full frame through an affine map, with
a soft mask; plus the two mask builders (`mirrored_sigmoid_mask`, AP-GAN eq. 12, and
`feather_mask`). The blend is AP-GAN eq. 13: ``out = mask * crop + (1 - mask) * frame``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit, prange

from ._dispatch import array_module_name, lookup, register
from ._sampling import FASTMATH, bilinear_into
from ._validate import check_array, check_float, check_same_module, check_size

__all__ = ["composite", "mirrored_sigmoid_mask", "feather_mask"]


def composite(crop, frame, frame_to_crop, mask, out=None):
    """Blend `crop` into `frame` where the affine map lands inside the crop.

    Args:
        crop: (h, w, 3) float32, values 0..255 (the generated face).
        frame: (H, W, 3) uint8 (the full webcam / output frame).
        frame_to_crop: (2, 3) float32 (float64 accepted) affine taking a frame pixel (x, y, 1) to
            crop coordinates (u, v) (e.g. the alignment matrix used to cut the crop out, as for
            ``cv2.warpAffine(frame, M, (w, h))``). Must be invertible.
        mask: (h, w) float32 in 0..1, blend weight of the crop (e.g. `mirrored_sigmoid_mask`).
        out: optional (H, W, 3) uint8 to write into; may be `frame` itself (in place), otherwise
            it must not overlap `frame`. When None a new array is returned.

    Returns:
        (H, W, 3) uint8: equal to `frame` except at frame pixels whose (u, v) lies inside the crop's
        pixel area, u in [-0.5, w-0.5) and v in [-0.5, h-0.5); there
        ``round(m * crop(u, v) + (1 - m) * frame)`` with crop and m = clip(mask(u, v), 0, 1) sampled
        bilinearly (border clamped). Only the frame box bounding the mapped crop corners is
        visited.
    """
    k = "composite"
    h, w, _ = check_array(k, "crop", crop, ("h", "w", 3), [np.float32])
    hh, ww, _ = check_array(k, "frame", frame, ("H", "W", 3), [np.uint8])
    check_array(k, "frame_to_crop", frame_to_crop, (2, 3), [np.float32, np.float64])
    check_array(k, "mask", mask, (h, w), [np.float32])
    check_same_module(k, "frame", frame, "crop", crop)
    check_same_module(k, "frame", frame, "mask", mask)
    if h == 0 or w == 0:
        raise ValueError(f"composite: crop must be non-empty, got shape {tuple(crop.shape)}")
    a = frame_to_crop.get() if array_module_name(frame_to_crop) == "cupy" else frame_to_crop
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"composite: frame_to_crop must be finite, got {a.tolist()}")
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if abs(det) < 1e-12:
        raise ValueError(f"composite: frame_to_crop must be invertible, got determinant {det} for {a.tolist()}")
    impl = lookup(k, frame)  # before allocating: a missing twin is the clearer error
    if out is None:
        out = frame.copy()
        copy = False
    else:
        check_array(k, "out", out, (hh, ww, 3), [np.uint8])
        check_same_module(k, "frame", frame, "out", out)
        copy = out is not frame
    roi = _frame_roi(a, h, w, hh, ww)
    return impl(crop, frame, a, mask, roi, copy, out)


def _frame_roi(a: np.ndarray, h: int, w: int, hh: int, ww: int) -> tuple[int, int, int, int]:
    """Inclusive frame pixel box (x0, x1, y0, y1) bounding the crop's pixel area mapped back to
    the frame (empty when x0 > x1 or y0 > y1)."""
    inv = cv2.invertAffineTransform(a)
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [-0.5, h - 0.5, 1], [w - 0.5, h - 0.5, 1]])
    p = corners @ inv.T  # (4, 2) frame coords
    # one pixel of slack against rounding; the exact inside test is per pixel
    x0 = max(0, int(math.floor(p[:, 0].min())) - 1)
    x1 = min(ww - 1, int(math.ceil(p[:, 0].max())) + 1)
    y0 = max(0, int(math.floor(p[:, 1].min())) - 1)
    y1 = min(hh - 1, int(math.ceil(p[:, 1].max())) + 1)
    return x0, x1, y0, y1


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _composite_numba(crop, frame, a, mask3, x0, x1, y0, y1, copy, out):
    hh = frame.shape[0]
    ww = frame.shape[1]
    h = crop.shape[0]
    w = crop.shape[1]
    if copy:
        for y in prange(hh):
            for x in range(ww):
                for c in range(3):
                    out[y, x, c] = frame[y, x, c]
    umax = w - 0.5
    vmax = h - 0.5
    for y in prange(y0, y1 + 1):
        cs = np.empty(3, dtype=np.float32)
        ms = np.empty(1, dtype=np.float32)
        for x in range(x0, x1 + 1):
            u = a[0, 0] * x + a[0, 1] * y + a[0, 2]
            v = a[1, 0] * x + a[1, 1] * y + a[1, 2]
            if not (u >= -0.5 and u < umax and v >= -0.5 and v < vmax):
                continue
            uf = np.float32(u)
            vf = np.float32(v)
            bilinear_into(mask3, uf, vf, ms)
            m = min(max(ms[0], np.float32(0.0)), np.float32(1.0))
            if m <= 0.0:  # out already holds the frame pixel
                continue
            bilinear_into(crop, uf, vf, cs)
            for c in range(3):
                val = m * cs[c] + (np.float32(1.0) - m) * np.float32(frame[y, x, c])
                val = min(max(val + np.float32(0.5), np.float32(0.0)), np.float32(255.0))
                out[y, x, c] = np.uint8(val)


def _composite_cpu(crop, frame, a, mask, roi, copy, out):
    x0, x1, y0, y1 = roi
    mask3 = np.ascontiguousarray(mask).reshape(mask.shape[0], mask.shape[1], 1)
    _composite_numba(np.ascontiguousarray(crop), frame, a, mask3, x0, x1, y0, y1, copy, out)
    return out


register("composite", "numpy", _composite_cpu)


# --------------------------------------------------------------------------------------------
# masks (pure numpy / OpenCV, computed once per crop size, not per frame)
# --------------------------------------------------------------------------------------------


def mirrored_sigmoid_mask(size: int, alpha: float = 0.08, gamma: float = 0.7) -> np.ndarray:
    """AP-GAN eq. 12 mirrored-sigmoid blending mask, (size, size) float32 in (0, 1).

    ``mask(x, y) = 1 / (1 + exp(alpha * (max(|x - c|, |y - c|) - gamma * mid)))`` with
    mid = size / 2 and c = (size - 1) / 2 the centre of the pixel grid (so the mask is exactly
    symmetric under x -> size-1-x, y -> size-1-y and transposition). ~1 in the centre, falling
    through 0.5 on the square of half-side gamma*mid; for size 256 the corners are ~0.05.
    """
    size = check_size("mirrored_sigmoid_mask", "size", size)
    alpha = check_float("mirrored_sigmoid_mask", "alpha", alpha)
    gamma = check_float("mirrored_sigmoid_mask", "gamma", gamma)
    c = (size - 1) / 2.0
    mid = size / 2.0
    d1 = np.abs(np.arange(size, dtype=np.float64) - c)
    d = np.maximum(d1[:, None], d1[None, :])
    z = np.clip(alpha * (d - gamma * mid), -60.0, 60.0)
    return (1.0 / (1.0 + np.exp(z))).astype(np.float32)


def feather_mask(coverage, radius_px: float) -> np.ndarray:
    """Soft (h, w) float32 mask in [0, 1] from a boolean coverage mask.

    0 outside `coverage`; inside it rises with the Euclidean distance d (pixels, cv2
    distanceTransform) to the nearest uncovered pixel *or the image border* as
    smoothstep(clip(d / radius_px, 0, 1)), so it reaches 1 at radius_px px inside the edge and is
    0 on the crop border (no seam when composited). radius_px <= 0 returns the hard mask.

    Args:
        coverage: (h, w) bool or uint8 (nonzero = covered), e.g. ``gbuf.coverage()``.
        radius_px: feather width in pixels.
    """
    k = "feather_mask"
    check_array(k, "coverage", coverage, ("h", "w"), [np.bool_, np.uint8])
    r = check_float(k, "radius_px", radius_px)
    cov = np.asarray(coverage) != 0
    if r <= 0.0:
        return cov.astype(np.float32)
    padded = np.pad(cov.astype(np.uint8), 1)  # the image border counts as uncovered
    d = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    t = np.clip(d / r, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
