"""The colour transfer of `realtime.swap.colour` compiled for the CPU (numba).

The array-module version in `colour` runs ~100 numpy calls a frame on arrays of a few thousand
values; their fixed cost was 2-3.3 ms of the swap's frame on the 2-core Xeon, where these loops
take ~1 ms. The functions here compute what `ColourTransfer._measure` and the rest of
`ColourTransfer.__call__` compute there, to round-off (float64 inside, where the array version
is float32; Lab only where a sample has weight; the render's Lab → sRGB round trip taken as the
clip it is), and `tests/realtime/swap/test_colour.py` holds the two to each other. The array
version stays the reference and the one that runs on the GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["measure", "transfer", "JACOBIAN_RGB"]

_M = np.array([[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _M.sum(1)
#: rgb (linear) → xyz over the white point, and back (rows: output channel)
_TO_XYZ = _M / _WHITE[:, None]
_FROM_XYZ = np.linalg.inv(_M) * _WHITE[None, :]
_D = 6.0 / 29.0
#: the skin means are linearised (±0.5 steps) within this sRGB range: a mean beyond 255.5 (an
#: over-exposed driver's clipped skin) differentiated entirely in the 255 clip, its Jacobian
#: singular, the transfer NaN and the swapped face black (code review). `colour` uses it too.
JACOBIAN_RGB = (1.0, 254.0)
#: The colour's damping floor (the transfer's `ratio` for a and b) applies in full to a driver
#: whose skin mean has at least this chroma (CIE C*ab), and falls to none with it: a grey driver
#: (a black-and-white camera, C* 0) makes a grey face, while the eval's drivers (skin C* 13.6 on
#: d11 to 27.9 on d10) keep the floor as it was. With the floor at half everywhere, a grey
#: driver's swap kept half the photo's colour: a cyan-tinged skin with pink cheeks and lips in
#: a grey scene; at none everywhere, s1 <- d10's lips lost enough colour that the tracked mouth
#: r fell from 0.922 to 0.903. The floor also falls with the driver's skin lightness below the
#: photo's (a dim room: a darker skin's chroma is lower with its lightness, and at the full floor
#: a dark driver got s1's rosy cheeks and red lips at half their strength, bright against it);
#: s12 and s5 <- d19 (d19's skin L* 52 against 75 and 66) read the same to 0.0005. `colour`
#: uses it too.
GREY_CHROMA = 10.0
_D3 = _D ** 3
_3DD = 3.0 * _D * _D


@njit(cache=True, nogil=True, inline="always")
def _linear(v):
    v = min(max(v / 255.0, 0.0), 1.0)
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


@njit(cache=True, nogil=True, inline="always")
def _f(x):
    return np.cbrt(max(x, 0.0)) if x > _D3 else x / _3DD + 4.0 / 29.0


@njit(cache=True, nogil=True, inline="always")
def _lab(r, g, b):
    """sRGB 0..255 → CIE Lab (D65), as `colour.srgb_to_lab`."""
    c0, c1, c2 = _linear(r), _linear(g), _linear(b)
    f0 = _f(_TO_XYZ[0, 0] * c0 + _TO_XYZ[0, 1] * c1 + _TO_XYZ[0, 2] * c2)
    f1 = _f(_TO_XYZ[1, 0] * c0 + _TO_XYZ[1, 1] * c1 + _TO_XYZ[1, 2] * c2)
    f2 = _f(_TO_XYZ[2, 0] * c0 + _TO_XYZ[2, 1] * c1 + _TO_XYZ[2, 2] * c2)
    return 116.0 * f1 - 16.0, 500.0 * (f0 - f1), 200.0 * (f1 - f2)


@njit(cache=True, nogil=True, inline="always")
def _finv(f):
    return f ** 3 if f > _D else _3DD * (f - 4.0 / 29.0)


@njit(cache=True, nogil=True, inline="always")
def _gamma(v):
    v = max(v, 0.0)
    return 255.0 * (12.92 * v if v <= 0.0031308 else 1.055 * v ** (1.0 / 2.4) - 0.055)


@njit(cache=True, nogil=True, inline="always")
def _rgb(lum, a, b):
    """CIE Lab → sRGB 0..255 (not clipped), as `colour.lab_to_srgb`."""
    fy = (lum + 16.0) / 116.0
    x, y, z = _finv(fy + a / 500.0), _finv(fy), _finv(fy - b / 200.0)
    return (_gamma(_FROM_XYZ[0, 0] * x + _FROM_XYZ[0, 1] * y + _FROM_XYZ[0, 2] * z),
            _gamma(_FROM_XYZ[1, 0] * x + _FROM_XYZ[1, 1] * y + _FROM_XYZ[1, 2] * z),
            _gamma(_FROM_XYZ[2, 0] * x + _FROM_XYZ[2, 1] * y + _FROM_XYZ[2, 2] * z))


@njit(cache=True, nogil=True, inline="always")
def _luma(r, g, b):
    return 0.299 * r + 0.587 * g + 0.114 * b


@njit(cache=True, nogil=True)
def _normalised_blur(k, samples, weights):
    """`colour.normalised_blur` of the 2×2 cell sums of samples·weights (2L, 2L, 3) and weights
    (2L, 2L): (low (L, L, 3), blurred weight (L, L))."""
    n = k.shape[0]
    x = np.zeros((n, n, 4))
    for i in range(2 * n):
        for j in range(2 * n):
            w = np.float64(weights[i, j])
            ci, cj = i // 2, j // 2
            for c in range(3):
                x[ci, cj, c] += np.float64(samples[i, j, c]) * w
            x[ci, cj, 3] += w
    # rows and columns of cells with no weight add nothing: skipped (the face covers part of the crop)
    row = np.zeros(n, np.bool_)
    col = np.zeros(n, np.bool_)
    for a in range(n):
        for b in range(n):
            if x[a, b, 3] != 0.0:
                row[a] = True
                col[b] = True
    y = np.zeros((n, n, 4))        # along rows: y = K @ x
    for i in range(n):
        for a in range(n):
            if row[a]:
                kia = np.float64(k[i, a])
                for j in range(n):
                    for c in range(4):
                        y[i, j, c] += kia * x[a, j, c]
    z = np.zeros((n, n, 4))        # along columns: z = y @ Kᵀ
    for i in range(n):
        for b in range(n):
            if col[b]:
                for j in range(n):
                    kjb = np.float64(k[j, b])
                    for c in range(4):
                        z[i, j, c] += kjb * y[i, b, c]
    low = np.empty((n, n, 3))
    den = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            d = z[i, j, 3]
            den[i, j] = d
            for c in range(3):
                low[i, j, c] = z[i, j, c] / max(d, 1e-6)
    return low, den


@njit(cache=True, nogil=True)
def measure(samples, weights, k):
    """`ColourTransfer._measure`: (rgb low-pass (L, L, 3), blurred weight (L, L), Lab μ (3),
    Lab σ (3)), float64, of one face's samples (2L, 2L, 3) 0..255 with skin weights (2L, 2L)
    and the blur matrix k (L, L)."""
    m = samples.shape[0]
    # the skin low-pass of all the skin, for the local reference of the robust weights
    low0, _ = _normalised_blur(k, samples, weights)
    w = np.empty((m, m))
    ysum = 0.0
    wsum = 0.0
    for i in range(m):
        for j in range(m):
            s0, s1, s2 = np.float64(samples[i, j, 0]), np.float64(samples[i, j, 1]), np.float64(samples[i, j, 2])
            y = _luma(s0, s1, s2)
            ref = max(_luma(low0[i // 2, j // 2, 0], low0[i // 2, j // 2, 1], low0[i // 2, j // 2, 2]), 1.0)
            wij = np.float64(weights[i, j])
            w[i, j] = wij * min(max((y / ref - 0.45) / (0.65 - 0.45), 0.0), 1.0)
            ysum += y * wij
            wsum += wij
    low, den = _normalised_blur(k, samples, w)
    # the statistics of the brighter skin, against the face's mean luma
    ref = max(ysum / max(wsum, 1e-6), 1.0)
    mu = np.zeros(3)
    sq = np.zeros(3)
    total = 0.0
    for i in range(m):
        for j in range(m):
            y = _luma(np.float64(samples[i, j, 0]), np.float64(samples[i, j, 1]), np.float64(samples[i, j, 2]))
            wij = np.float64(weights[i, j]) * min(max((y / ref - 0.5) / (0.7 - 0.5), 0.0), 1.0)
            if wij == 0.0:
                continue
            total += wij
            lab = _lab(np.float64(samples[i, j, 0]), np.float64(samples[i, j, 1]), np.float64(samples[i, j, 2]))
            for c in range(3):
                mu[c] += wij * lab[c]
                sq[c] += wij * lab[c] * lab[c]
    total = max(total, 1e-6)
    sigma = np.empty(3)
    for c in range(3):
        mu[c] /= total
        sigma[c] = math.sqrt(max(sq[c] / total - mu[c] * mu[c], 1e-6))
    return low, den, mu, sigma


@njit(cache=True, nogil=True)
def _jacobian(rgb, step):
    """d lab / d rgb (3, 3) at an sRGB colour, central differences (`colour.lab_jacobian`)."""
    j = np.empty((3, 3))
    for c in range(3):
        p = rgb.copy()
        q = rgb.copy()
        p[c] += step
        q[c] -= step
        lp = _lab(p[0], p[1], p[2])
        lq = _lab(q[0], q[1], q[2])
        for i in range(3):
            j[i, c] = (lp[i] - lq[i]) / (2.0 * step)
    return j


@njit(cache=True, nogil=True)
def _inverse3(a):
    inv = np.empty((3, 3))
    inv[0, 0] = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    inv[0, 1] = a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]
    inv[0, 2] = a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]
    inv[1, 0] = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    inv[1, 1] = a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]
    inv[1, 2] = a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]
    inv[2, 0] = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    inv[2, 1] = a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]
    inv[2, 2] = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    det = a[0, 0] * inv[0, 0] + a[0, 1] * inv[1, 0] + a[0, 2] * inv[2, 0]
    return inv / det


@njit(cache=True, nogil=True)
def transfer(mu_r, sd_r, mu_d, sd_d, r_low, d_low, d_den, ratio_lo, ratio_hi, mix, full_support,
             gain_lo, gain_hi):
    """`ColourTransfer.affine` and the gain field of `ColourTransfer.__call__`: ([A | 0] (3, 4),
    gain (L, L, 3)), float32, from both faces' measurements (`measure`; the driver's smoothed)."""
    rgb_r = np.empty(3)
    rgb_d = np.empty(3)
    rgb_r[0], rgb_r[1], rgb_r[2] = _rgb(mu_r[0], mu_r[1], mu_r[2])
    rgb_d[0], rgb_d[1], rgb_d[2] = _rgb(mu_d[0], mu_d[1], mu_d[2])
    lo, hi = JACOBIAN_RGB   # differentiated off the clips
    for c in range(3):
        rgb_r[c] = min(max(rgb_r[c], lo), hi)
        rgb_d[c] = min(max(rgb_d[c], lo), hi)
    j_r = _jacobian(rgb_r, 0.5)
    j_d_inv = _inverse3(_jacobian(rgb_d, 0.5))
    grey = min(math.hypot(mu_d[1], mu_d[2]) / GREY_CHROMA, 1.0)   # 0: a colourless driver
    grey *= min(max(mu_d[0], 0.0) / max(mu_r[0], 1.0), 1.0)      # a darker driver: less chroma
    a = np.zeros((3, 3))
    for i in range(3):
        for c in range(3):
            for m in range(3):
                floor = ratio_lo[m] if m == 0 else ratio_lo[m] * grey
                s = min(max(sd_d[m] / sd_r[m], floor), ratio_hi[m])
                a[i, c] += j_d_inv[i, m] * s * j_r[m, c]
    b = np.empty(3)
    for i in range(3):
        b[i] = rgb_d[i] - (a[i, 0] * rgb_r[0] + a[i, 1] * rgb_r[1] + a[i, 2] * rgb_r[2])
    nr = max(rgb_r[0] * rgb_r[0] + rgb_r[1] * rgb_r[1] + rgb_r[2] * rgb_r[2], 1.0)
    ab = np.zeros((3, 4), np.float32)
    for i in range(3):
        for c in range(3):
            a[i, c] += b[i] * rgb_r[c] / nr
            ab[i, c] = a[i, c]
    n = r_low.shape[0]
    gain = np.empty((n, n, 3), np.float32)
    for i in range(n):
        for j in range(n):
            q0, q1, q2 = r_low[i, j, 0], r_low[i, j, 1], r_low[i, j, 2]
            r0 = max(a[0, 0] * q0 + a[0, 1] * q1 + a[0, 2] * q2, 0.0)
            r1 = max(a[1, 0] * q0 + a[1, 1] * q1 + a[1, 2] * q2, 0.0)
            r2 = max(a[2, 0] * q0 + a[2, 1] * q1 + a[2, 2] * q2, 0.0)
            l0, l1, l2 = _lab(r0, r1, r2)
            # sRGB of its Lab (the array version's explicit round trip): the colour clipped to 255
            base = (min(r0, 255.0), min(r1, 255.0), min(r2, 255.0))
            kk = min(max(d_den[i, j] / full_support, 0.0), 1.0)
            g = base
            if kk > 0.0:     # the driver's field reaches this cell
                e0, e1, e2 = _lab(d_low[i, j, 0], d_low[i, j, 1], d_low[i, j, 2])
                g = _rgb(l0 + kk * mix[0] * (e0 - l0), l1 + kk * mix[1] * (e1 - l1), l2 + kk * mix[2] * (e2 - l2))
            for c in range(3):
                gain[i, j, c] = min(max(g[c] / max(base[c], 1.0), gain_lo), gain_hi)
    return ab, gain
