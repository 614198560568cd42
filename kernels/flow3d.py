"""`flow3d`: dense frame-to-frame flow and visibility from mesh motion (UniFaceGAN eq. 11-16).

Adapted to our conventions (smaller z = nearer, empty depth = +inf, pixel centres at integer
coordinates) and to a *backward-warp* flow: the returned flow is the offset to ADD to a pixel
position at time t to find where the same surface point was at t-1, i.e. ``-W_xy`` of eq. 11, so
that ``warp(prev_image, flow)`` aligns the previous frame with the current one.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import empty_like_module, lookup, register
from ._validate import check_array, check_float, check_gbuffer, check_indices, check_same_module
from .gbuffer import GBuffer

__all__ = ["flow3d", "DEPTH_EPS"]

#: Default depth tolerance (crop px) of the occlusion test: "the same surface at t−1".
DEPTH_EPS = 0.5


def flow3d(gbuf_t: GBuffer, triangles, verts_t, verts_prev, depth_prev, depth_eps: float = DEPTH_EPS, out=None):
    """Flow from frame t to frame t-1 for every pixel of the mesh at t, with visibility.

    For a pixel q = (x, y) covered at t by triangle (v0, v1, v2) with weights λ (from gbuf_t):

        W      = Σ_k λ_k (V_k^t − V_k^{t−1})                  (eq. 11, a 3-vector)
        Q^t    = (x, y, depth_t(q))                            (eq. 12)
        Q^{t−1} = Q^t − W                                       (eq. 14)
        visible(q) = covered at t                               (eq. 13: gbuf_t already holds the
                                                                 nearest surface)
                     and (Q^{t−1}_x, Q^{t−1}_y) rounds to a pixel inside the image
                     and Q^{t−1}_z <= Z^{t−1}(Q^{t−1}_x, Q^{t−1}_y) + depth_eps   (eq. 15, smaller
                                                                 z = nearer: the point was not
                                                                 hidden behind another surface)
        flow(q) = −W_xy if visible else 0                       (eq. 16, sign flipped, see below)

    Z^{t−1} is `depth_prev` sampled bilinearly when its four neighbours are all finite, else at
    the nearest pixel; an empty (+inf) nearest pixel means "not drawn at t−1" -> not visible.
    Q^{t−1}_z is evaluated as Σ λ_k z_k^{t−1} (the same value as depth_t − W_z, without the
    float32 rounding of the depth buffer).

    Flow sign: flow(q) = Q^{t−1}_xy − q is the offset to ADD to a pixel position at t to reach the
    same surface point in frame t−1, so ``warp(prev_image, flow)`` is the previous frame aligned
    to the current one (valid where `visible`).

    Args:
        gbuf_t: G-buffer (H, W) of the mesh at time t (from `rasterize(verts_t, triangles, ...)`).
        triangles: (T, 3) int32.
        verts_t, verts_prev: (V, 3) float32 vertex positions (x px, y px, z) at t and t−1.
        depth_prev: (H, W) float32 depth buffer of t−1 (`rasterize(verts_prev, ...).depth`).
        depth_eps: tolerance (>= 0, in the units of z) of the occlusion test. It must absorb the
            float32 rounding of `depth_prev` (so not 0) and the error of sampling a curved depth
            buffer between pixel centres; the default 0.5 suits z in pixel-like units.
        out: optional (flow (H, W, 2) float32, visible (H, W) bool) to write into.

    Returns:
        (flow (H, W, 2) float32, visible (H, W) bool); flow is 0 where not visible.
    """
    k = "flow3d"
    hh, ww = check_gbuffer(k, "gbuf_t", gbuf_t)
    check_array(k, "triangles", triangles, ("T", 3), [np.int32])
    nv, _ = check_array(k, "verts_t", verts_t, ("V", 3), [np.float32])
    check_array(k, "verts_prev", verts_prev, (nv, 3), [np.float32])
    check_array(k, "depth_prev", depth_prev, (hh, ww), [np.float32])
    eps = check_float(k, "depth_eps", depth_eps, minimum=0.0)
    for name, a in (("triangles", triangles), ("verts_t", verts_t), ("verts_prev", verts_prev),
                    ("depth_prev", depth_prev)):
        check_same_module(k, "gbuf_t.tri_id", gbuf_t.tri_id, name, a)
    check_indices(k, "triangles", triangles, nv)
    impl = lookup(k, gbuf_t.tri_id)  # before allocating: a missing twin is the clearer error
    if out is None:
        flow = empty_like_module(verts_t, (hh, ww, 2), np.float32)
        vis = empty_like_module(verts_t, (hh, ww), np.bool_)
    else:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(f"flow3d: out must be a tuple (flow, visible), got {type(out).__name__}")
        flow, vis = out
        check_array(k, "out[0] (flow)", flow, (hh, ww, 2), [np.float32])
        check_array(k, "out[1] (visible)", vis, (hh, ww), [np.bool_])
        check_same_module(k, "gbuf_t.tri_id", gbuf_t.tri_id, "out[0]", flow)
        check_same_module(k, "gbuf_t.tri_id", gbuf_t.tri_id, "out[1]", vis)
    return impl(gbuf_t, triangles, verts_t, verts_prev, depth_prev, eps, flow, vis)


@njit(cache=True, nogil=True, inline="always")
def depth_at(depth, qx, qy):
    """Z^{t-1} at (qx, qy): bilinear if the 4 neighbours are finite, else the nearest pixel.
    Returns +inf when (qx, qy) rounds outside the image or lands on an empty pixel."""
    hh = depth.shape[0]
    ww = depth.shape[1]
    rx = np.floor(qx + 0.5)
    ry = np.floor(qy + 0.5)
    if not (rx >= 0.0 and rx <= ww - 1 and ry >= 0.0 and ry <= hh - 1):  # also catches NaN
        return np.inf
    cx = min(max(qx, 0.0), np.float64(ww - 1))
    cy = min(max(qy, 0.0), np.float64(hh - 1))
    x0 = int(cx)
    y0 = int(cy)
    x1 = min(x0 + 1, ww - 1)
    y1 = min(y0 + 1, hh - 1)
    a = np.float64(depth[y0, x0])
    b = np.float64(depth[y0, x1])
    c = np.float64(depth[y1, x0])
    d = np.float64(depth[y1, x1])
    if np.isfinite(a) and np.isfinite(b) and np.isfinite(c) and np.isfinite(d):
        fx = cx - x0
        fy = cy - y0
        top = a + fx * (b - a)
        bot = c + fx * (d - c)
        return top + fy * (bot - top)
    return np.float64(depth[int(ry), int(rx)])


@njit(cache=True, nogil=True, inline="always")
def surface_motion(tri_id, bary, triangles, verts_t, verts_prev, y, x):
    """(wx, wy, qz) at pixel (x, y) of triangle tri_id[y, x] (which must be valid): the
    surface point's displacement from t−1 to t in pixels and its depth at t−1 (eq. 11-14).
    Shared with the smoother's fused CPU pass (kernels/temporal_blend.py). numba's on-disk cache
    keys each function on its own file: after editing this helper (or `depth_at`), delete
    kernels/__pycache__ so temporal_blend is recompiled with it."""
    t = tri_id[y, x]
    i0 = triangles[t, 0]
    i1 = triangles[t, 1]
    i2 = triangles[t, 2]
    l1 = np.float64(bary[y, x, 0])
    l2 = np.float64(bary[y, x, 1])
    l0 = 1.0 - l1 - l2
    wx = (
        l0 * (np.float64(verts_t[i0, 0]) - verts_prev[i0, 0])
        + l1 * (np.float64(verts_t[i1, 0]) - verts_prev[i1, 0])
        + l2 * (np.float64(verts_t[i2, 0]) - verts_prev[i2, 0])
    )
    wy = (
        l0 * (np.float64(verts_t[i0, 1]) - verts_prev[i0, 1])
        + l1 * (np.float64(verts_t[i1, 1]) - verts_prev[i1, 1])
        + l2 * (np.float64(verts_t[i2, 1]) - verts_prev[i2, 1])
    )
    qz = (
        l0 * np.float64(verts_prev[i0, 2])
        + l1 * np.float64(verts_prev[i1, 2])
        + l2 * np.float64(verts_prev[i2, 2])
    )
    return wx, wy, qz


@njit(parallel=True, cache=True, nogil=True)
def _flow3d_numba(tri_id, bary, triangles, verts_t, verts_prev, depth_prev, eps, flow, vis):
    hh = tri_id.shape[0]
    ww = tri_id.shape[1]
    n_tri = triangles.shape[0]
    for y in prange(hh):
        for x in range(ww):
            t = tri_id[y, x]
            flow[y, x, 0] = np.float32(0.0)
            flow[y, x, 1] = np.float32(0.0)
            vis[y, x] = False
            if t < 0 or t >= n_tri:
                continue
            wx, wy, qz = surface_motion(tri_id, bary, triangles, verts_t, verts_prev, y, x)
            zp = depth_at(depth_prev, np.float64(x) - wx, np.float64(y) - wy)
            # zp = +inf: outside the image or nothing drawn there at t-1 -> not visible
            if np.isfinite(zp) and qz <= zp + eps:
                vis[y, x] = True
                flow[y, x, 0] = np.float32(-wx)
                flow[y, x, 1] = np.float32(-wy)


def _flow3d_cpu(gbuf_t, triangles, verts_t, verts_prev, depth_prev, eps, flow, vis):
    _flow3d_numba(
        np.ascontiguousarray(gbuf_t.tri_id),
        np.ascontiguousarray(gbuf_t.bary),
        np.ascontiguousarray(triangles),
        np.ascontiguousarray(verts_t),
        np.ascontiguousarray(verts_prev),
        np.ascontiguousarray(depth_prev),
        np.float64(eps),
        flow,
        vis,
    )
    return flow, vis


register("flow3d", "numpy", _flow3d_cpu)
