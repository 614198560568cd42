"""The one bilinear sampler shared by `texture`, `warp` and `composite` (numba, inlined), and the
trilinear colour table lookup of `swap_blend` and `realtime.swap.colour_numba`.

Convention: pixel (x, y) has its centre at integer (x, y); coordinates are clamped to
[0, w-1] x [0, h-1] (border clamp), so sampling outside repeats the edge pixels.

Note: numba's on-disk cache (cache=True) keys each kernel on its own source file only; after
editing this helper, delete every __pycache__ of the tree (`find . -name __pycache__ -prune -exec rm
-rf {} +`): texture, warp, composite, atlas_blend, swap_blend and temporal_blend in kernels/ and
realtime/swap/glasses.py inline it (realtime/swap/colour_numba.py the table lookup), and their
cached machine code is not rebuilt otherwise.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: fastmath flags safe for the samplers: FMA contraction, reciprocal, signed zeros. Not nnan/ninf
#: (NaN coordinates are tested) and not reassoc (keeps integer/half-pixel samples exact).
FASTMATH = {"contract", "arcp", "nsz"}


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def bilinear_weights(h, w, x, y):
    """The sampler's taps at (x, y) in an (h, w) image, border clamped: (x0, y0, x1, y1, fx, fy),
    float32 fractions. (x, y) must not be NaN. Computed once, they serve every channel of every
    array of that size (`bilinear_tap`)."""
    x = min(max(x, np.float32(0.0)), np.float32(w - 1))
    y = min(max(y, np.float32(0.0)), np.float32(h - 1))
    x0 = int(x)  # floor: x >= 0
    y0 = int(y)
    return x0, y0, min(x0 + 1, w - 1), min(y0 + 1, h - 1), np.float32(x - x0), np.float32(y - y0)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def bilinear_tap(img, x0, y0, x1, y1, fx, fy, c):
    """Channel `c` of the (h, w, C) image `img` at the taps of `bilinear_weights`, float32."""
    a = np.float32(img[y0, x0, c])
    b = np.float32(img[y0, x1, c])
    cc = np.float32(img[y1, x0, c])
    d = np.float32(img[y1, x1, c])
    top = a + fx * (b - a)
    bot = cc + fx * (d - cc)
    return top + fy * (bot - top)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def bilinear_into(img, x, y, dst):
    """Sample the (h, w, C) image `img` (uint8 or float32) bilinearly at (x, y), border clamped,
    and write the C float32 values into the 1-D array `dst`. A NaN coordinate writes zeros.

    Exact at integer coordinates (weights 0/1) and for half-pixel averages."""
    nc = img.shape[2]
    if not (x == x and y == y):  # NaN
        for c in range(nc):
            dst[c] = np.float32(0.0)
        return
    x0, y0, x1, y1, fx, fy = bilinear_weights(img.shape[0], img.shape[1], x, y)
    if nc == 3:  # the common case, unrolled (~20% faster)
        dst[0] = bilinear_tap(img, x0, y0, x1, y1, fx, fy, 0)
        dst[1] = bilinear_tap(img, x0, y0, x1, y1, fx, fy, 1)
        dst[2] = bilinear_tap(img, x0, y0, x1, y1, fx, fy, 2)
    else:
        for c in range(nc):
            dst[c] = bilinear_tap(img, x0, y0, x1, y1, fx, fy, c)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lut_cell(x, n):
    """(cell i, fraction t) of a table coordinate x along an axis of n ≥ 2 nodes: i clamped to
    0..n − 2, t not clamped (beyond the table the end cells extend linearly). int() truncates
    towards 0, which is floor wherever the clamp leaves it the cell (x < 0 gives cell 0)."""
    i = min(max(int(x), 0), n - 2)
    return i, np.float32(x - np.float32(i))


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lerp(a, b, t):
    return a + t * (b - a)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lut_channel(flat, p, di, dj, t0, t1, t2):
    """One channel of the trilinear lookup: `flat` the table's values in one row, p the first
    node's value of the cell, di / dj / 3 the strides along the first two axes."""
    c00 = _lerp(flat[p], flat[p + 3], t2)
    c01 = _lerp(flat[p + dj], flat[p + dj + 3], t2)
    c10 = _lerp(flat[p + di], flat[p + di + 3], t2)
    c11 = _lerp(flat[p + di + dj], flat[p + di + dj + 3], t2)
    return _lerp(_lerp(c00, c01, t1), _lerp(c10, c11, t1), t0)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def lut_colour(flat, n, scale, r0, r1, r2):
    """The (n, n, n, 3) float32 colour table, given as its C-order values in one row `flat`
    (n³ · 3: node (i, j, l) at the colour (i, j, l) / scale), at the colour (r0, r1, r2),
    trilinear: a float32 triple. `scale` = (n − 1) / the colours' range (255 for sRGB). Beyond
    the table the end cells extend linearly, so that a table of an affine map (2 nodes are
    enough) gives that map everywhere."""
    i, t0 = _lut_cell(r0 * scale, n)
    j, t1 = _lut_cell(r1 * scale, n)
    k, t2 = _lut_cell(r2 * scale, n)
    dj = 3 * n
    di = dj * n
    p = i * di + j * dj + 3 * k
    return (_lut_channel(flat, p, di, dj, t0, t1, t2), _lut_channel(flat, p + 1, di, dj, t0, t1, t2),
            _lut_channel(flat, p + 2, di, dj, t0, t1, t2))
