"""`texture`: bilinear lookup of an image at per-pixel source coordinates (e.g. UV -> texel)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._sampling import FASTMATH, bilinear_into
from ._validate import check_array, check_same_module, output_array

__all__ = ["texture"]


def texture(image, coords, mask=None, out=None):
    """Sample `image` bilinearly at `coords`.

    Args:
        image: (h, w, C) uint8 or float32 source image.
        coords: (H, W, 2) float32, [..., 0] = x and [..., 1] = y in source pixels (pixel centres
            at integer coordinates); may be a strided view. Coordinates are clamped to the image border; NaN gives 0.
        mask: optional (H, W) bool or uint8; where it is False/0 the output is 0 and the pixel is
            not sampled at all (that is the point: only the face is looked up).
        out: optional (H, W, C) float32 array to write into (fully overwritten).

    Returns:
        (H, W, C) float32 samples, in the image's value range (0..255 for uint8).
    """
    k = "texture"
    _, _, c = check_array(k, "image", image, ("h", "w", "C"), [np.uint8, np.float32])
    hh, ww, _ = check_array(k, "coords", coords, ("H", "W", 2), [np.float32])
    check_same_module(k, "image", image, "coords", coords)
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"texture: image must be non-empty, got shape {tuple(image.shape)}")
    if mask is not None:
        check_array(k, "mask", mask, (hh, ww), [np.bool_, np.uint8])
        check_same_module(k, "image", image, "mask", mask)
    impl = lookup(k, image)  # before allocating: a missing twin is the clearer error
    out = output_array(k, out, "image", image, (hh, ww, c), np.float32)
    return impl(image, coords, mask, out)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _texture_numba(image, coords, mask, has_mask, out):
    hh = coords.shape[0]
    ww = coords.shape[1]
    nc = out.shape[2]
    for y in prange(hh):
        for x in range(ww):
            if has_mask and mask[y, x] == 0:
                for c in range(nc):
                    out[y, x, c] = np.float32(0.0)
            else:
                bilinear_into(image, coords[y, x, 0], coords[y, x, 1], out[y, x])


_NO_MASK = np.ones((1, 1), dtype=np.uint8)


def _texture_cpu(image, coords, mask, out):
    if mask is None:
        m, has = _NO_MASK, False
    else:
        m, has = np.ascontiguousarray(mask).view(np.uint8), True
    # coords as they come: a strided view (the first two channels of a wider array) is read in
    # place rather than copied
    _texture_numba(np.ascontiguousarray(image), coords, m, has, out)
    return out


register("texture", "numpy", _texture_cpu)
