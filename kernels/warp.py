"""`warp`: backward warp of an image by a dense flow field."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._sampling import FASTMATH, bilinear_into
from ._validate import check_array, check_same_module, output_array

__all__ = ["warp"]


def warp(image, flow, out=None):
    """Backward warp: ``out[y, x] = image(x + flow[y, x, 0], y + flow[y, x, 1])``.

    Args:
        image: (H, W, C) uint8 or float32.
        flow: (H, W, 2) float32 offsets in pixels (x, y) added to each output pixel's position to
            find where to read `image` (bilinear, border clamped, NaN -> 0). With the flow from
            `flow3d`, ``warp(prev_image, flow)`` aligns the previous frame to the current one.
        out: optional (H, W, C) float32 array to write into (fully overwritten; must not alias
            `image`).

    Returns:
        (H, W, C) float32.
    """
    k = "warp"
    hh, ww, c = check_array(k, "image", image, ("H", "W", "C"), [np.uint8, np.float32])
    check_array(k, "flow", flow, (hh, ww, 2), [np.float32])
    check_same_module(k, "image", image, "flow", flow)
    if hh == 0 or ww == 0:
        raise ValueError(f"warp: image must be non-empty, got shape {tuple(image.shape)}")
    impl = lookup(k, image)  # before allocating: a missing twin is the clearer error
    if out is image:
        raise ValueError("warp: out must not be the input image (backward warps read neighbours)")
    out = output_array(k, out, "image", image, (hh, ww, c), np.float32)
    return impl(image, flow, out)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _warp_numba(image, flow, out):
    hh = flow.shape[0]
    ww = flow.shape[1]
    for y in prange(hh):
        fy = np.float32(y)
        for x in range(ww):
            bilinear_into(image, np.float32(x) + flow[y, x, 0], fy + flow[y, x, 1], out[y, x])


def _warp_cpu(image, flow, out):
    _warp_numba(np.ascontiguousarray(image), np.ascontiguousarray(flow), out)
    return out


register("warp", "numpy", _warp_cpu)
