"""`interpolate`: per-vertex attributes -> per-pixel attributes through a G-buffer."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import lookup, register
from ._validate import check_array, check_gbuffer, check_indices, check_same_module, output_array
from .gbuffer import GBuffer

__all__ = ["interpolate"]


def interpolate(gbuf: GBuffer, triangles, attributes, out=None):
    """Barycentric interpolation of per-vertex attributes at every covered pixel.

    Args:
        gbuf: G-buffer (H, W) from `rasterize` with the same `triangles`.
        triangles: (T, 3) int32, the triangles `gbuf` was rasterized from.
        attributes: (V, C) float32 per-vertex values (texture coordinates, vertex motion, ...).
        out: optional (H, W, C) float32 array to write into (fully overwritten).

    Returns:
        (H, W, C) float32: ``A[v0] + b0 * (A[v1] - A[v0]) + b1 * (A[v2] - A[v0])`` for the pixel's
        triangle (v0, v1, v2) and weights (b0, b1) = gbuf.bary, computed in float64; 0 where
        gbuf.tri_id is -1 (or, defensively, not a valid triangle index).
    """
    k = "interpolate"
    hh, ww = check_gbuffer(k, "gbuf", gbuf)
    check_array(k, "triangles", triangles, ("T", 3), [np.int32])
    _, c = check_array(k, "attributes", attributes, ("V", "C"), [np.float32])
    check_same_module(k, "gbuf.tri_id", gbuf.tri_id, "triangles", triangles)
    check_same_module(k, "gbuf.tri_id", gbuf.tri_id, "attributes", attributes)
    check_indices(k, "triangles", triangles, int(attributes.shape[0]))
    impl = lookup(k, gbuf.tri_id)  # before allocating: a missing twin is the clearer error
    out = output_array(k, out, "gbuf.tri_id", gbuf.tri_id, (hh, ww, c), np.float32)
    return impl(gbuf, triangles, attributes, out)


@njit(parallel=True, cache=True, nogil=True)
def _interpolate_numba(tri_id, bary, triangles, attributes, out):
    hh = tri_id.shape[0]
    ww = tri_id.shape[1]
    nc = attributes.shape[1]
    n_tri = triangles.shape[0]
    for y in prange(hh):
        for x in range(ww):
            t = tri_id[y, x]
            if t < 0 or t >= n_tri:
                for c in range(nc):
                    out[y, x, c] = np.float32(0.0)
                continue
            i0 = triangles[t, 0]
            i1 = triangles[t, 1]
            i2 = triangles[t, 2]
            b0 = np.float64(bary[y, x, 0])
            b1 = np.float64(bary[y, x, 1])
            for c in range(nc):
                a0 = np.float64(attributes[i0, c])
                out[y, x, c] = np.float32(
                    a0 + b0 * (np.float64(attributes[i1, c]) - a0) + b1 * (np.float64(attributes[i2, c]) - a0)
                )


def _interpolate_cpu(gbuf, triangles, attributes, out):
    _interpolate_numba(
        np.ascontiguousarray(gbuf.tri_id),
        np.ascontiguousarray(gbuf.bary),
        np.ascontiguousarray(triangles),
        np.ascontiguousarray(attributes),
        out,
    )
    return out


register("interpolate", "numpy", _interpolate_cpu)
