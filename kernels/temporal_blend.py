"""`temporal_blend`: motion-compensated temporal smoothing of the face pixels of a crop
(DESIGN §6): `flow3d`'s flow and visibility, `warp`'s bilinear sample of the previous output
and the blend, fused into one pass."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._sampling import FASTMATH, bilinear_into
from ._validate import check_array, check_float, check_gbuffer, check_indices, check_same_module, output_array
from .flow3d import DEPTH_EPS, depth_at, surface_motion

__all__ = ["temporal_blend"]


def temporal_blend(gbuf, triangles, face_end: int, verts_t, verts_prev, depth_prev, render, prev,
                   strength: float, inv_scale: float, box: tuple[int, int, int, int] | None = None,
                   depth_eps: float = DEPTH_EPS, out=None):
    """``out = render + a·(warp(prev, F) − render)`` on the face pixels, `render` elsewhere.

    F and the visibility are `flow3d`'s (the surface point of each pixel at t, found at t−1 by
    the vertices' motion, visible when it passes the depth test against `depth_prev`); the
    blend weight is ``a = strength · exp(−r²)`` with r = mean |warped − render| · `inv_scale`
    over the channels (a real change passes, shimmer is averaged away).

    Args:
        gbuf: GBuffer (H, W) of frame t.
        triangles: (T, 3) int32; `face_end`: triangles below it are the face (smoothed), the
            rest (the head layer) is left as rendered.
        verts_t, verts_prev: (V, 3) float32 vertices at t and t−1 (crop pixels, depth).
        depth_prev: (H, W) float32 depth buffer of t−1.
        render: (H, W, C) float32 the new crop; prev: (H, W, C) float32 the previous output.
        strength: a0 in [0, 1); inv_scale: 1 / r0 (colour levels).
        box: (y0, y1, x0, x1) the pixels that can hold face at t or t−1 (None: the whole crop).
        out: optional (H, W, C) float32 (may not alias `prev`; fully overwritten).

    Returns:
        (H, W, C) float32.
    """
    k = "temporal_blend"
    h, w = check_gbuffer(k, "gbuf", gbuf)
    check_array(k, "triangles", triangles, ("T", 3), [np.int32])
    v = check_array(k, "verts_t", verts_t, ("V", 3), [np.float32])[0]
    check_array(k, "verts_prev", verts_prev, (v, 3), [np.float32])
    check_array(k, "depth_prev", depth_prev, (h, w), [np.float32])
    c = check_array(k, "render", render, (h, w, "C"), [np.float32])[2]
    check_array(k, "prev", prev, (h, w, c), [np.float32])
    for name, x in (("triangles", triangles), ("verts_t", verts_t), ("verts_prev", verts_prev),
                    ("depth_prev", depth_prev), ("render", render), ("prev", prev)):
        check_same_module(k, "gbuf.tri_id", gbuf.tri_id, name, x)
    check_indices(k, "triangles", triangles, v)
    strength = check_float(k, "strength", strength, 0.0)
    inv_scale = check_float(k, "inv_scale", inv_scale, 0.0)
    depth_eps = check_float(k, "depth_eps", depth_eps, 0.0)
    if box is None:
        box = (0, h, 0, w)
    y0, y1, x0, x1 = (int(b) for b in box)
    box = (max(0, y0), min(h, y1), max(0, x0), min(w, x1))
    impl = lookup(k, render)
    if out is prev:
        raise ValueError(f"{k}: out must not be prev (the warp reads its neighbours)")
    out = output_array(k, out, "render", render, (h, w, c), np.float32)
    return impl(gbuf, triangles, int(face_end), verts_t, verts_prev, depth_prev, render, prev,
                strength, inv_scale, box, depth_eps, out)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _temporal_blend_numba(tri_id, bary, triangles, face_end, verts_t, verts_prev, depth_prev,
                          eps, render, prev, strength, inv_scale, y0, y1, x0, x1, out):
    """The rule on the face pixels of the box [y0, y1) × [x0, x1); `out` already holds
    `render` (every pixel not written here keeps it)."""
    nc = render.shape[2]
    for y in prange(y0, y1):
        warped = np.empty(nc, np.float32)
        for x in range(x0, x1):
            t = tri_id[y, x]
            if t < 0 or t >= face_end:
                continue
            wx, wy, qz = surface_motion(tri_id, bary, triangles, verts_t, verts_prev, y, x)
            zp = depth_at(depth_prev, np.float64(x) - wx, np.float64(y) - wy)
            if not (np.isfinite(zp) and qz <= zp + eps):
                continue
            bilinear_into(prev, np.float32(x) + np.float32(-wx), np.float32(y) + np.float32(-wy),
                          warped)
            d = np.float32(0.0)
            for k in range(nc):
                d += abs(warped[k] - render[y, x, k])
            r = d / nc * inv_scale
            a = strength * np.exp(-r * r)
            for k in range(nc):
                out[y, x, k] = render[y, x, k] + a * (warped[k] - render[y, x, k])


def _temporal_blend_cpu(gbuf, triangles, face_end, verts_t, verts_prev, depth_prev, render, prev,
                        strength, inv_scale, box, depth_eps, out):
    c = np.ascontiguousarray
    out[...] = render
    y0, y1, x0, x1 = box
    _temporal_blend_numba(c(gbuf.tri_id), c(gbuf.bary), c(triangles), face_end, c(verts_t),
                          c(verts_prev), c(depth_prev), np.float64(depth_eps), c(render), c(prev),
                          np.float32(strength), np.float32(inv_scale), y0, y1, x0, x1, out)
    return out


register("temporal_blend", "numpy", _temporal_blend_cpu)
