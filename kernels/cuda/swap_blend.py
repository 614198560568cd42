"""CUDA twin of `kernels.swap_blend` (``swap_blend.cu``): one thread per pixel of the frame box
that bounds the mapped crop."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, frame, render, alpha, fan, low, colour, frame_to_crop, occlusion, roi, copy, out):
    """Twin signature (frame, render, alpha, fan, low, colour, frame_to_crop, occlusion, roi, copy,
    out) -> out, run on `rt`: frame (H, W, 3) uint8, render (h, w, 3) float32, alpha (h, w)
    float32, fan (h, w, 3) float32, low (L, L', 7) float32, colour (n, n, n, 3) float32, frame_to_crop
    a host numpy (2, 3) float64, occlusion four floats, roi (x0, x1, y0, y1) the inclusive frame
    box to visit, copy: whether `out` must first receive a copy of `frame` (else it already holds
    one). out (H, W, 3) uint8, never `frame`. Inputs may be non-contiguous."""
    xp = rt.xp
    h, w = render.shape[:2]
    lh, lw = low.shape[:2]
    hh, ww = frame.shape[:2]
    x0, x1, y0, y1 = (int(v) for v in roi)
    buf = scratch(rt, out)
    if copy or buf is not out:
        buf[...] = frame
    a = np.asarray(frame_to_crop, dtype=np.float64)
    nx, ny = max(0, x1 - x0 + 1), max(0, y1 - y0 + 1)
    args = (
        xp.ascontiguousarray(frame),
        xp.ascontiguousarray(render),
        xp.ascontiguousarray(alpha),
        xp.ascontiguousarray(fan),
        xp.ascontiguousarray(low),
        xp.ascontiguousarray(colour),
        np.int32(colour.shape[0]),
        np.int32(h),
        np.int32(w),
        np.int32(lh),
        np.int32(lw),
        np.int32(hh),
        np.int32(ww),
        *(np.float64(v) for v in a.ravel()),
        *(np.float32(v) for v in occlusion),
        np.int32(x0),
        np.int32(y0),
        np.int32(nx),
        np.int32(ny),
        buf,
    )
    launch_1d(rt, "swap_blend", "swap_blend", nx * ny, args)
    commit(out, buf)
    return out


register("swap_blend", "cupy", cupy_twin(twin))
