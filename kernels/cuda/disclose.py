"""CUDA twin of `kernels.disclose` (``disclose.cu``): one thread per pixel of the frame."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, image, mark, label, origin, out):
    """Twin signature (image, mark, label, origin, out) -> out, run on `rt`: image (H, W, 3)
    uint8; mark (H, W) int8 or None; label (h, w, 4) uint8 or None, at origin (y0, x0) inside
    the frame; out (H, W, 3) uint8, fully overwritten, may be image itself. Inputs may be
    non-contiguous."""
    xp = rt.xp
    hh, ww = image.shape[0], image.shape[1]
    buf = scratch(rt, out)
    src = xp.ascontiguousarray(image)   # image itself when contiguous: in place is fine
    has_mark = mark is not None
    m = xp.ascontiguousarray(mark) if has_mark else xp.zeros(1, np.int8)
    lab = xp.ascontiguousarray(label) if label is not None else xp.zeros(4, np.uint8)
    lh, lw = (int(label.shape[0]), int(label.shape[1])) if label is not None else (0, 0)
    args = (src, np.int32(hh), np.int32(ww), m, np.int32(has_mark), lab, np.int32(origin[0]),
            np.int32(origin[1]), np.int32(lh), np.int32(lw), buf)
    launch_1d(rt, "disclose", "disclose", hh * ww, args)
    commit(out, buf)
    return out


register("disclose", "cupy", cupy_twin(twin))
