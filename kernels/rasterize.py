"""`rasterize`: triangles in pixel space -> G-buffer (tri_id, barycentrics, depth).

CPU twin: numba, parallel over horizontal bands of rows (each band owned by one thread, so there
are no write races); within a band the triangles are visited in index order.

Coverage is decided exactly: vertex x, y are snapped to 1/256 px (`SUBPIXEL_BITS`) into int64
and the three edge functions are evaluated in integer arithmetic, so they are exact and
antisymmetric (E(a, b, p) == -E(b, a, p)). With the top-left fill rule a pixel centre lying on
an edge shared by two triangles is drawn by exactly one of them, and one lying on a vertex
shared by a closed fan is drawn exactly once. Barycentric weights and depth are then computed in
float64 from the *unsnapped* vertex coordinates, so `interpolate` of the vertices' own x, y
returns the pixel coordinates to float32 precision.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._dispatch import empty_like_module, lookup, register
from ._validate import check_array, check_gbuffer, check_indices, check_same_module, check_size
from .gbuffer import GBuffer

__all__ = ["rasterize", "SUBPIXEL_BITS", "MAX_COORD_PX"]

#: Vertex x, y are snapped to 1 / 2**SUBPIXEL_BITS px for the (exact) coverage test.
SUBPIXEL_BITS = 8
#: Triangles with a vertex farther than this from the origin (in x or y, pixels) are skipped:
#: it keeps every fixed-point edge-function product inside int64.
MAX_COORD_PX = float(1 << 21)
#: Rows per band of the parallel loop.
_BAND_ROWS = 8


def rasterize(vertices, triangles, height, width, out: GBuffer | None = None) -> GBuffer:
    """Rasterize a triangle mesh into an H×W G-buffer; the nearest surface wins.

    Args:
        vertices: (V, 3) float32, columns x [px], y [px], z (depth, smaller = nearer). Pixel
            (x, y) has its centre at integer coordinates (x, y).
        triangles: (T, 3) int32 vertex indices, each in [0, V).
        height, width: target size H, W (ints > 0).
        out: optional GBuffer of shape (H, W) (int32 / float32 / float32 fields, same array
            module as `vertices`) to write into; it is fully overwritten.

    Returns:
        GBuffer with
        tri_id (H, W) int32: index of the nearest triangle covering the pixel centre, -1 if none;
        bary (H, W, 2) float32: weights of that triangle's 2nd and 3rd vertices (1st = 1-b0-b1),
            0 where empty; computed from the unsnapped vertices, so on a triangle's rim a weight
            can fall outside [0, 1] by the snapping error (<= 1/512 px over the triangle height);
        depth (H, W) float32: interpolated z of that surface, +inf where empty.

    Rules:
        - both windings are drawn (no back-face culling);
        - top-left fill rule on exact fixed-point edge functions (1/256 px): a pixel centre on an
          edge shared by two triangles belongs to exactly one of them;
        - triangles are clipped to the image (bbox); zero-area triangles (after snapping), and
          triangles with a non-finite vertex coordinate or one beyond ±MAX_COORD_PX, are skipped;
        - depth ties: the lower triangle index wins, so the result never depends on the number
          of threads.
    """
    k = "rasterize"
    check_array(k, "vertices", vertices, ("V", 3), [np.float32])
    check_array(k, "triangles", triangles, ("T", 3), [np.int32])
    check_same_module(k, "vertices", vertices, "triangles", triangles)
    h = check_size(k, "height", height)
    w = check_size(k, "width", width)
    check_indices(k, "triangles", triangles, int(vertices.shape[0]))
    impl = lookup(k, vertices)  # before allocating: a missing twin is the clearer error
    if out is None:
        out = GBuffer(
            tri_id=empty_like_module(vertices, (h, w), np.int32),
            bary=empty_like_module(vertices, (h, w, 2), np.float32),
            depth=empty_like_module(vertices, (h, w), np.float32),
        )
    else:
        check_gbuffer(k, "out", out, (h, w))
        check_same_module(k, "vertices", vertices, "out.tri_id", out.tri_id)
    return impl(vertices, triangles, h, w, out)


# --------------------------------------------------------------------------------------------
# numba CPU twin
# --------------------------------------------------------------------------------------------

# per-triangle integer record columns
_I_X0, _I_Y0, _I_X1, _I_Y1, _I_X2, _I_Y2 = 0, 1, 2, 3, 4, 5  # fixed point, positive winding order
_I_XMIN, _I_XMAX, _I_YMIN, _I_YMAX = 6, 7, 8, 9  # pixel bbox clipped to the image, inclusive
_I_VALID = 10
_I_T0, _I_T1, _I_T2 = 11, 12, 13  # edge thresholds: inside iff E >= t (0 = owned edge, 1 = not)
_NI = 14
# per-triangle float record columns: barycentric planes (of ORIGINAL vertices 1 and 2) + depth
_F_X0, _F_Y0, _F_A1, _F_C1, _F_A2, _F_C2, _F_Z0, _F_DZ1, _F_DZ2 = range(9)
_NF = 9


@njit(cache=True, nogil=True, inline="always")
def _owned(dx, dy):
    """Top-left rule for an edge of a positively wound triangle (E > 0 inside) in image coords
    (y down): top edges (dy == 0, dx > 0) and left edges (dy < 0) own the pixel centres lying
    on them. Antisymmetric: exactly one of d and -d is owned for d != 0."""
    return dy < 0 or (dy == 0 and dx > 0)


@njit(cache=True, nogil=True)
def _setup_triangles(vertices, triangles, height, width, ti, tf):
    fix = np.float64(1 << SUBPIXEL_BITS)
    lim = MAX_COORD_PX
    n_tri = triangles.shape[0]
    for t in range(n_tri):
        ti[t, _I_VALID] = 0
        i0 = triangles[t, 0]
        i1 = triangles[t, 1]
        i2 = triangles[t, 2]
        x0 = np.float64(vertices[i0, 0])
        y0 = np.float64(vertices[i0, 1])
        z0 = np.float64(vertices[i0, 2])
        x1 = np.float64(vertices[i1, 0])
        y1 = np.float64(vertices[i1, 1])
        z1 = np.float64(vertices[i1, 2])
        x2 = np.float64(vertices[i2, 0])
        y2 = np.float64(vertices[i2, 1])
        z2 = np.float64(vertices[i2, 2])
        ok = True
        for v in (x0, y0, x1, y1, x2, y2):
            if not (abs(v) <= lim):  # also false for NaN
                ok = False
        for v in (z0, z1, z2):
            if not np.isfinite(v):
                ok = False
        if not ok:
            continue
        X0 = np.int64(np.floor(x0 * fix + 0.5))
        Y0 = np.int64(np.floor(y0 * fix + 0.5))
        X1 = np.int64(np.floor(x1 * fix + 0.5))
        Y1 = np.int64(np.floor(y1 * fix + 0.5))
        X2 = np.int64(np.floor(x2 * fix + 0.5))
        Y2 = np.int64(np.floor(y2 * fix + 0.5))
        area = (X1 - X0) * (Y2 - Y0) - (Y1 - Y0) * (X2 - X0)
        if area == 0:
            continue
        # pixel bbox: pixel centres p with p * fix in [min X, max X]
        xmn = min(X0, min(X1, X2))
        xmx = max(X0, max(X1, X2))
        ymn = min(Y0, min(Y1, Y2))
        ymx = max(Y0, max(Y1, Y2))
        f = np.int64(1 << SUBPIXEL_BITS)
        pxmin = max(np.int64(0), -((-xmn) // f))
        pxmax = min(np.int64(width - 1), xmx // f)
        pymin = max(np.int64(0), -((-ymn) // f))
        pymax = min(np.int64(height - 1), ymx // f)
        if pxmin > pxmax or pymin > pymax:
            continue
        if area < 0:  # draw both windings: test edges in positive order v0, v2, v1
            X1, X2 = X2, X1
            Y1, Y2 = Y2, Y1
        ti[t, _I_X0] = X0
        ti[t, _I_Y0] = Y0
        ti[t, _I_X1] = X1
        ti[t, _I_Y1] = Y1
        ti[t, _I_X2] = X2
        ti[t, _I_Y2] = Y2
        ti[t, _I_XMIN] = pxmin
        ti[t, _I_XMAX] = pxmax
        ti[t, _I_YMIN] = pymin
        ti[t, _I_YMAX] = pymax
        ti[t, _I_T0] = 0 if _owned(X1 - X0, Y1 - Y0) else 1
        ti[t, _I_T1] = 0 if _owned(X2 - X1, Y2 - Y1) else 1
        ti[t, _I_T2] = 0 if _owned(X0 - X2, Y0 - Y2) else 1
        # barycentric planes from the unsnapped coordinates (snapped ones if those degenerate)
        d = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if d == 0.0:
            x0 = ti[t, _I_X0] / fix
            y0 = ti[t, _I_Y0] / fix
            # original (unswapped) vertex order for the weights
            x1 = np.floor(x1 * fix + 0.5) / fix
            y1 = np.floor(y1 * fix + 0.5) / fix
            x2 = np.floor(x2 * fix + 0.5) / fix
            y2 = np.floor(y2 * fix + 0.5) / fix
            d = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        inv = 1.0 / d
        tf[t, _F_X0] = x0
        tf[t, _F_Y0] = y0
        tf[t, _F_A1] = (y2 - y0) * inv
        tf[t, _F_C1] = -(x2 - x0) * inv
        tf[t, _F_A2] = -(y1 - y0) * inv
        tf[t, _F_C2] = (x1 - x0) * inv
        tf[t, _F_Z0] = z0
        tf[t, _F_DZ1] = z1 - z0
        tf[t, _F_DZ2] = z2 - z0
        ti[t, _I_VALID] = 1


@njit(parallel=True, cache=True, nogil=True)
def _rasterize_numba(vertices, triangles, height, width, tri_id, bary, depth):
    # One parallel function called straight from Python: a cached non-parallel njit caller of a
    # parallel callee segfaults when loaded from numba's cache (numba issues #4807, #8578).
    f = np.int64(1 << SUBPIXEL_BITS)
    n_tri = triangles.shape[0]
    ti = np.empty((n_tri, _NI), dtype=np.int64)
    tf = np.empty((n_tri, _NF), dtype=np.float64)
    _setup_triangles(vertices, triangles, height, width, ti, tf)  # serial: ~1 us per 100 tris
    band_rows = _BAND_ROWS
    n_bands = (height + band_rows - 1) // band_rows
    for b in prange(n_bands):
        ya = b * band_rows
        yb = min(height, ya + band_rows) - 1
        for y in range(ya, yb + 1):
            for x in range(width):
                tri_id[y, x] = -1
                depth[y, x] = np.inf
                bary[y, x, 0] = 0.0
                bary[y, x, 1] = 0.0
        for t in range(n_tri):
            if ti[t, _I_VALID] == 0:
                continue
            ys = max(ti[t, _I_YMIN], ya)
            ye = min(ti[t, _I_YMAX], yb)
            if ys > ye:
                continue
            X0 = ti[t, _I_X0]
            Y0 = ti[t, _I_Y0]
            X1 = ti[t, _I_X1]
            Y1 = ti[t, _I_Y1]
            X2 = ti[t, _I_X2]
            Y2 = ti[t, _I_Y2]
            th0 = ti[t, _I_T0]
            th1 = ti[t, _I_T1]
            th2 = ti[t, _I_T2]
            xs = ti[t, _I_XMIN]
            xe = ti[t, _I_XMAX]
            # E_ab(P) = (Bx - Ax) * (Py - Ay) - (By - Ay) * (Px - Ax); P = (x, y) * f
            s0 = -(Y1 - Y0) * f
            s1 = -(Y2 - Y1) * f
            s2 = -(Y0 - Y2) * f
            fx0 = tf[t, _F_X0]
            fy0 = tf[t, _F_Y0]
            a1 = tf[t, _F_A1]
            c1 = tf[t, _F_C1]
            a2 = tf[t, _F_A2]
            c2 = tf[t, _F_C2]
            z0 = tf[t, _F_Z0]
            dz1 = tf[t, _F_DZ1]
            dz2 = tf[t, _F_DZ2]
            t32 = np.int32(t)
            for y in range(ys, ye + 1):
                py = y * f
                px = xs * f
                e0 = (X1 - X0) * (py - Y0) - (Y1 - Y0) * (px - X0)
                e1 = (X2 - X1) * (py - Y1) - (Y2 - Y1) * (px - X1)
                e2 = (X0 - X2) * (py - Y2) - (Y0 - Y2) * (px - X2)
                seen = False
                ry = np.float64(y) - fy0
                for x in range(xs, xe + 1):
                    if e0 >= th0 and e1 >= th1 and e2 >= th2:
                        seen = True
                        rx = np.float64(x) - fx0
                        w1 = a1 * rx + c1 * ry
                        w2 = a2 * rx + c2 * ry
                        z = np.float32(z0 + w1 * dz1 + w2 * dz2)
                        if z < depth[y, x]:  # strict: on ties the lower index (drawn first) wins
                            depth[y, x] = z
                            tri_id[y, x] = t32
                            bary[y, x, 0] = np.float32(w1)
                            bary[y, x, 1] = np.float32(w2)
                    elif seen:
                        break  # convex: the span of this row is over
                    e0 += s0
                    e1 += s1
                    e2 += s2


def _rasterize_cpu(vertices, triangles, height, width, out: GBuffer) -> GBuffer:
    _rasterize_numba(
        np.ascontiguousarray(vertices),
        np.ascontiguousarray(triangles),
        height,
        width,
        out.tri_id,
        out.bary,
        out.depth,
    )
    return out


register("rasterize", "numpy", _rasterize_cpu)
