"""CUDA twin of `kernels.texture` (``texture.cu``): one thread per output pixel."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, image, coords, mask, out):
    """Twin signature (image, coords, mask or None, out) -> out, run on `rt`: image (h, w, C)
    uint8 or float32, coords (H, W, 2) float32, mask None or (H, W) bool / uint8, out (H, W, C)
    float32 (fully overwritten). Inputs may be non-contiguous."""
    xp = rt.xp
    h, w, nc = image.shape
    hh, ww = coords.shape[:2]
    if mask is None:
        m, has_mask = xp.zeros(1, np.uint8), 0  # never read
    else:
        m, has_mask = xp.ascontiguousarray(mask).view(np.uint8), 1
    buf = scratch(rt, out)
    kernel = "texture_u8" if image.dtype == np.uint8 else "texture_f32"
    args = (
        xp.ascontiguousarray(image),
        np.int32(h),
        np.int32(w),
        np.int32(nc),
        xp.ascontiguousarray(coords),
        m,
        np.int32(has_mask),
        np.int32(hh * ww),
        buf,
    )
    launch_1d(rt, "texture", kernel, hh * ww, args)
    commit(out, buf)
    return out


register("texture", "cupy", cupy_twin(twin))
