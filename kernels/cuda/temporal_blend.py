"""CUDA twin of `kernels.temporal_blend` (``temporal_blend.cu``): one thread per pixel of the
crop (the box test is in the kernel, so one launch writes all of ``out``)."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, gbuffer_args, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, gbuf, triangles, face_end, verts_t, verts_prev, depth_prev, render, prev, strength,
         inv_scale, box, depth_eps, out):
    """Twin signature (gbuf, triangles, face_end, verts_t, verts_prev, depth_prev, render, prev,
    strength, inv_scale, box, depth_eps, out) -> out, run on `rt`: gbuf fields (H, W), triangles
    (T, 3) int32, face_end int, verts (V, 3) float32, depth_prev (H, W) float32, render and prev
    (H, W, C) float32, box (y0, y1, x0, x1) clipped to the crop, depth_eps >= 0; out (H, W, C)
    float32 (not prev) is fully overwritten and may be render itself. Inputs may be
    non-contiguous."""
    xp = rt.xp
    hh, ww, nc = render.shape
    n_tri = triangles.shape[0]
    y0, y1, x0, x1 = (int(b) for b in box)
    # only t < face_end matters, for 0 <= t < T: clamping keeps it and fits an int32
    face = min(max(int(face_end), 0), n_tri)
    buf = scratch(rt, out)
    if buf is out and (xp.may_share_memory(out, render) or xp.may_share_memory(out, prev)):
        buf = xp.empty(out.shape, out.dtype)  # the kernel stages the warped sample in out
    args = (
        *gbuffer_args(rt, gbuf, triangles),
        np.int32(face),
        xp.ascontiguousarray(verts_t),
        xp.ascontiguousarray(verts_prev),
        xp.ascontiguousarray(depth_prev),
        np.int32(hh),
        np.int32(ww),
        np.float64(depth_eps),
        xp.ascontiguousarray(render),
        xp.ascontiguousarray(prev),
        np.int32(nc),
        np.float32(strength),
        np.float32(inv_scale),
        np.int32(y0),
        np.int32(y1),
        np.int32(x0),
        np.int32(x1),
        buf,
    )
    launch_1d(rt, "temporal_blend", "temporal_blend", hh * ww, args)
    commit(out, buf)
    return out


register("temporal_blend", "cupy", cupy_twin(twin))
