"""CUDA twin of `kernels.flow3d` (``flow3d.cu``): one thread per pixel."""
from __future__ import annotations

import numpy as np

from .._dispatch import register
from ._runtime import Runtime, commit, cupy_twin, gbuffer_args, launch_1d, scratch

__all__ = ["twin"]


def twin(rt: Runtime, gbuf_t, triangles, verts_t, verts_prev, depth_prev, depth_eps, flow, visible):
    """Twin signature (gbuf_t, triangles, verts_t, verts_prev, depth_prev, depth_eps, flow,
    visible) -> (flow, visible), run on `rt`: gbuf_t fields (H, W), triangles (T, 3) int32,
    verts (V, 3) float32, depth_prev (H, W) float32, depth_eps >= 0; flow (H, W, 2) float32 and
    visible (H, W) bool are fully overwritten. Inputs may be non-contiguous."""
    xp = rt.xp
    hh, ww = gbuf_t.tri_id.shape
    fbuf = scratch(rt, flow)
    vbuf = scratch(rt, visible)
    args = (
        *gbuffer_args(rt, gbuf_t, triangles),
        xp.ascontiguousarray(verts_t),
        xp.ascontiguousarray(verts_prev),
        xp.ascontiguousarray(depth_prev),
        np.int32(hh),
        np.int32(ww),
        np.float64(depth_eps),
        fbuf,
        vbuf.view(np.uint8),
    )
    launch_1d(rt, "flow3d", "flow3d", hh * ww, args)
    commit(flow, fbuf)
    commit(visible, vbuf)
    return flow, visible


register("flow3d", "cupy", cupy_twin(twin))
