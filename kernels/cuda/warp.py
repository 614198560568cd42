"""CUDA twin of `kernels.warp` (``warp.cu``): one thread per pixel."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, image, flow, out):
    """Twin signature (image, flow, out) -> out, run on `rt`: image (H, W, C) uint8 or float32,
    flow (H, W, 2) float32, out (H, W, C) float32 (fully overwritten, not aliasing image).
    Inputs may be non-contiguous."""
    xp = rt.xp
    hh, ww, nc = image.shape
    buf = scratch(rt, out)
    kernel = "warp_u8" if image.dtype == np.uint8 else "warp_f32"
    args = (xp.ascontiguousarray(image), np.int32(hh), np.int32(ww), np.int32(nc), xp.ascontiguousarray(flow), buf)
    launch_1d(rt, "warp", kernel, hh * ww, args)
    commit(out, buf)
    return out


register("warp", "cupy", cupy_twin(twin))
