"""CUDA twin of `kernels.composite` (``composite.cu``): one thread per pixel of the frame box
that bounds the mapped crop."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, launch_1d

__all__ = ["twin"]


def twin(rt: Runtime, crop, frame, frame_to_crop, mask, roi, copy, out):
    """Twin signature (crop, frame, frame_to_crop, mask, roi, copy, out) -> out, run on `rt`:
    crop (h, w, 3) float32, frame (H, W, 3) uint8, frame_to_crop a host numpy (2, 3) float64,
    mask (h, w) float32, roi (x0, x1, y0, y1) the inclusive frame box to visit, copy: whether
    `out` must first receive a copy of `frame` (else `out` already holds it: it is `frame`, or a
    copy of it). out (H, W, 3) uint8. Inputs may be non-contiguous."""
    xp = rt.xp
    h, w = mask.shape
    x0, x1, y0, y1 = (int(v) for v in roi)
    buf = xp.ascontiguousarray(out)  # the kernel reads the frame pixel from `out` itself
    if copy:
        buf[...] = frame
    a = np.asarray(frame_to_crop, dtype=np.float64)
    nx, ny = max(0, x1 - x0 + 1), max(0, y1 - y0 + 1)
    args = (
        xp.ascontiguousarray(crop),
        xp.ascontiguousarray(mask),
        np.int32(h),
        np.int32(w),
        *(np.float64(v) for v in a.ravel()),
        np.int32(x0),
        np.int32(y0),
        np.int32(nx),
        np.int32(ny),
        np.int32(out.shape[1]),
        buf,
    )
    launch_1d(rt, "composite", "composite", nx * ny, args)
    commit(out, buf)
    return out


register("composite", "cupy", cupy_twin(twin))
