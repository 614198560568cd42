"""The colour transfer of `realtime.swap.colour` compiled for the CPU (numba).

The array-module version in `colour` runs ~100 numpy calls a frame on arrays of a few thousand
values; their fixed cost was 2-3.3 ms of the swap's frame on the 2-core Xeon, where these loops
take ~1 ms. The functions here compute what `ColourTransfer._measure` and the rest of
`ColourTransfer.__call__` compute there, to round-off (float64 inside, where the array version
is float32, but for the colour table's gamma; Lab only where a sample has weight; the render's
Lab → sRGB round trip taken as the clip it is), and `tests/realtime/swap/test_colour.py` holds the
two to each other. The array version stays the reference and the one that runs on the GPU.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from kernels._sampling import lut_colour

__all__ = ["measure", "transfer", "transfer_node", "node_cube_roots", "GREY_CHROMA", "LUT_NODES", "TO_XYZ",
           "FROM_XYZ", "TOE_FREE", "TOE_FREE_INV", "SHADOW_HUE", "RED_KNEE",
           "KNEE_SPREAD"]

_M = np.array([[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _M.sum(1)
#: rgb (linear) → xyz over the white point, and back (rows: output channel)
TO_XYZ = _M / _WHITE[:, None]
FROM_XYZ = np.linalg.inv(_M) * _WHITE[None, :]
_TO_XYZ, _FROM_XYZ = TO_XYZ, FROM_XYZ
#: ∛(xyz over the white) → Lab without its linear toe, (ℓ = L + 16, a, b) (`colour.toe_free_lab`)
TOE_FREE = np.array([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]])
TOE_FREE_INV = np.linalg.inv(TOE_FREE)
_D = 6.0 / 29.0
#: nodes of the colour transfer's table along each sRGB axis (node i at sRGB i · 255 / 16)
LUT_NODES = 17
#: (lo, hi, alike, apart): in the photo's shadows, under lo of its skin's lightness (ℓ / ℓR, ℓ =
#: L + 16 without Lab's toe), blended in up to hi, a colour's deviation from the photo's skin
#: colour along its hue (chroma) goes along the driver's skin hue, and the one across it (hue)
#: is dropped — in full where the two skins' mean hues are `apart` degrees apart or more, not at
#: all where they are `alike` or closer (a face onto itself: the identity). A painting's shadows
#: turn in hue with their darkness (s9: the varnished skin 82°, its shadows 56-68° at ℓ / ℓR
#: 0.4-0.75); carried over onto a pink driver (d19: 38°, its own shadows 36-39°) by Reinhard's
#: per-axis transfer, the turn made them magenta (16-24°). Features at the skin's lightness
#: (lips, rosy cheeks) keep their hue as before; the lips' lightness, ~0.8, is why `lo` is not
#: higher (with (0.6, 0.9) and none `alike`, the mouth of the astronaut swapped onto her
#: recoloured self, 26° apart, lost enough contrast that MediaPipe lost the face).
SHADOW_HUE = (0.6, 0.9, 20.0, 40.0)
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
#: (from, full): a colour redder than the photo's skin by more than `from` of its skin's spread
#: in a* (σ, beyond the skin's own a* at that lightness: ℓ / ℓR · a*R) keeps its colour's offset
#: from the skin undamped, in full from `full` (the transfer's "kept" maps, whose chroma ratio is
#: at least 1, or the grey factor of `GREY_CHROMA` for a grey or darker driver): the lips and a
#: lipstick (s1's 3.4 σ, s5's 4.1 σ). Reinhard's ratios are the skins' spreads, and on a driver
#: whose skin has little colour (d14: a* σ 1.4 against s1's 6.4) they took half the lips' red
#: with them: pale brown lips on s1, hardly any on s5 (a black mouth round a remix's teeth).
#: Measured (bench --mode swap --quality, s1 and s5 on d10 and d14, at (2, 4)): mouth r +0.014
#: to +0.032, dlib distance to the photo +0.001 to +0.007, fwe the same. At (2, 4) s1's blush
#: (up to ~3 σ at its heart) came out as a patch with an edge; from 2.5 it stays as it was.
#: Only the red side, so that a painting's cool highlight (s0) is not kept with them.
RED_KNEE = (2.5, 4.5)
#: the least a* spread (σ) the knee counts in: the ramp is at least 2 · this wide in a*, which
#: the 17³ colour table can follow (over a skin whose a* hardly varies (σ 1), a ramp 2 a* wide
#: fell between its nodes: 15 levels off at the 99th percentile)
KNEE_SPREAD = 5.0
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
def _gamma32(v):
    """`_gamma` in float32 (the colour table's values: a third of its cost in float64's pow)."""
    v = np.float32(max(v, 0.0))
    if v <= np.float32(0.0031308):
        return np.float32(255.0) * np.float32(12.92) * v
    return np.float32(255.0) * (np.float32(1.055) * v ** np.float32(1.0 / 2.4) - np.float32(0.055))


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


@njit(cache=True, nogil=True, inline="always")
def _not_past_grey(c00, c01, c10, c11, ar, br, ad, bd, floor):
    """`colour.not_past_grey` of the chroma map ((c00, c01), (c10, c11)) between the render's skin
    (ar, br) and the driver's (ad, bd), with the colour's floor: the map's four entries."""
    g0 = ad - (c00 * ar + c01 * br)
    g1 = bd - (c10 * ar + c11 * br)
    n_d = math.hypot(ad, bd)
    u0, u1 = ad / max(n_d, 1e-6), bd / max(n_d, 1e-6)
    n_r2 = ar * ar + br * br
    past = min(g0 * u0 + g1 * u1 + max(floor * math.sqrt(n_r2) - n_d, 0.0), 0.0) * min(n_d / GREY_CHROMA, 1.0)
    q = past / max(n_r2, 1e-6)
    return c00 + q * u0 * ar, c01 + q * u0 * br, c10 + q * u1 * ar, c11 + q * u1 * br


@njit(cache=True, nogil=True)
def _transfer_matrix(mu_r, sd_r, mu_d, sd_d, ratio_lo, ratio_hi):
    """`colour.transfer_matrix`: (K (4, 3, 3), sL, knee (2,)), float64."""
    grey = min(math.hypot(mu_d[1], mu_d[2]) / GREY_CHROMA, 1.0)   # 0: a colourless driver
    grey *= min(max(mu_d[0], 0.0) / max(mu_r[0], 1.0), 1.0)      # a darker driver: less chroma
    scale = np.empty(3)
    for c in range(3):
        floor = ratio_lo[c] if c == 0 else ratio_lo[c] * grey
        scale[c] = min(max(sd_d[c] / sd_r[c], floor), ratio_hi[c])
    ell_r, ell_d = max(mu_r[0] + 16.0, 1.0), max(mu_d[0] + 16.0, 1.0)
    qa = mu_d[1] * mu_r[1] + mu_d[2] * mu_r[2] + GREY_CHROMA * GREY_CHROMA
    qb = mu_d[2] * mu_r[1] - mu_d[1] * mu_r[2]
    alike = min(max((math.radians(SHADOW_HUE[3]) - abs(math.atan2(qb, qa)))
                    / math.radians(SHADOW_HUE[3] - SHADOW_HUE[2]), 0.0), 1.0)
    nr = max(math.hypot(mu_r[1], mu_r[2]), 1e-6)
    nd = max(math.hypot(mu_d[1], mu_d[2]), GREY_CHROMA)
    r0, r1, d0, d1 = mu_r[1] / nr, mu_r[2] / nr, mu_d[1] / nd, mu_d[2] / nd
    k = np.empty((4, 3, 3))
    for which in range(4):
        # 0, 1: damped (Reinhard's ratios); 2, 3: kept (`RED_KNEE`: the ratios at least 1, or
        # as much as a grey or darker driver has colour)
        s1, s2 = (scale[1], scale[2]) if which < 2 else (max(scale[1], grey), max(scale[2], grey))
        radial = s1 * r0 * r0 + s2 * r1 * r1
        c00, c01, c10, c11 = s1, 0.0, 0.0, s2      # lit: Reinhard's ratios on a and b
        if which % 2 == 1:  # in shadow: along the driver's hue, across it as the hues are alike
            c00 = alike * c00 + (1.0 - alike) * radial * d0 * r0
            c01 = (1.0 - alike) * radial * d0 * r1
            c10 = (1.0 - alike) * radial * d1 * r0
            c11 = alike * c11 + (1.0 - alike) * radial * d1 * r1
        if which < 2:
            c00, c01, c10, c11 = _not_past_grey(c00, c01, c10, c11, mu_r[1], mu_r[2], mu_d[1], mu_d[2],
                                                ratio_lo[1] * grey)
        m = np.zeros((3, 3))
        m[0, 0] = ell_d / ell_r
        m[1, 1], m[1, 2] = c00, c01
        m[2, 1], m[2, 2] = c10, c11
        m[1, 0] = (mu_d[1] - m[1, 1] * mu_r[1] - m[1, 2] * mu_r[2]) / ell_r
        m[2, 0] = (mu_d[2] - m[2, 1] * mu_r[1] - m[2, 2] * mu_r[2]) / ell_r
        k[which] = TOE_FREE_INV @ m @ TOE_FREE
    knee = np.array([mu_r[1] / ell_r, max(sd_r[1], KNEE_SPREAD)])
    return k, scale[0], knee


def node_cube_roots(n: int) -> np.ndarray:
    """(n, n, n, 3) float64 ∛(xyz over the white) of the sRGB colours (i, j, l) · 255 / (n − 1): the
    colour table's nodes, the part of the transfer that does not change from frame to frame."""
    g = np.linspace(0.0, 1.0, n)
    lin = np.where(g <= 0.04045, g / 12.92, ((g + 0.055) / 1.055) ** 2.4)
    rgb = np.stack(np.meshgrid(lin, lin, lin, indexing="ij"), axis=-1)
    return np.cbrt(np.maximum(rgb @ TO_XYZ.T, 0.0))


@njit(cache=True, nogil=True, inline="always")
def transfer_node(k, s_l, fy_r, knee, f0, f1, f2):
    """The colour transfer (K (4, 3, 3), sL, knee of `colour.transfer_matrix`; fy_r = ℓR / 116) of
    one colour given as ∛(xyz over the white) (f0, f1, f2): sRGB 0..255 (≥ 0, not clipped above)."""
    rel = max(f1, 1e-6) / fy_r
    t = min(max((rel - SHADOW_HUE[0]) / (SHADOW_HUE[1] - SHADOW_HUE[0]), 0.0), 1.0)   # 1: lit
    red = (500.0 * (f0 - f1) - 116.0 * f1 * knee[0]) / knee[1]    # a* above the skin's, in its σ
    u = min(max((red - RED_KNEE[0]) / (RED_KNEE[1] - RED_KNEE[0]), 0.0), 1.0)   # 1: kept
    p = 1.0 if s_l == 1.0 else rel ** (s_l - 1.0)
    x = y = z = 0.0
    for which in range(4):
        w = (t if which % 2 == 0 else 1.0 - t) * (1.0 - u if which < 2 else u)
        if w == 0.0:        # most nodes are lit or in shadow, not between, and damped
            continue
        x += w * (k[which, 0, 0] * f0 + k[which, 0, 1] * f1 + k[which, 0, 2] * f2)
        y += w * (k[which, 1, 0] * f0 + k[which, 1, 1] * f1 + k[which, 1, 2] * f2)
        z += w * (k[which, 2, 0] * f0 + k[which, 2, 1] * f1 + k[which, 2, 2] * f2)
    x, y, z = max(x, 0.0) * p, max(y, 0.0) * p, max(z, 0.0) * p
    x, y, z = x * x * x, y * y * y, z * z * z
    return (_gamma32(FROM_XYZ[0, 0] * x + FROM_XYZ[0, 1] * y + FROM_XYZ[0, 2] * z),
            _gamma32(FROM_XYZ[1, 0] * x + FROM_XYZ[1, 1] * y + FROM_XYZ[1, 2] * z),
            _gamma32(FROM_XYZ[2, 0] * x + FROM_XYZ[2, 1] * y + FROM_XYZ[2, 2] * z))


@njit(cache=True, nogil=True, parallel=True)
def _table(k, s_l, fy_r, knee, nodes):
    """`colour.transfer_lut` at the nodes' cube roots (n, n, n, 3) (`node_cube_roots`): (n, n, n, 3)
    float32. Parallel (as the kernels: numba's thread pool): 0.2 ms a frame on one core."""
    n = nodes.shape[0]
    lut = np.empty((n, n, n, 3), np.float32)
    for i in prange(n):
        for j in range(n):
            for m in range(n):
                c0, c1, c2 = transfer_node(k, s_l, fy_r, knee, nodes[i, j, m, 0], nodes[i, j, m, 1], nodes[i, j, m, 2])
                lut[i, j, m, 0] = c0
                lut[i, j, m, 1] = c1
                lut[i, j, m, 2] = c2
    return lut


@njit(cache=True, nogil=True)
def transfer(mu_r, sd_r, mu_d, sd_d, r_low, d_low, d_den, ratio_lo, ratio_hi, mix, full_support,
             gain_lo, gain_hi, nodes):
    """`ColourTransfer.table` and the gain field of `ColourTransfer.__call__`: (colour table
    (n, n, n, 3), gain (L, L, 3)), float32, from both faces' measurements (`measure`; the driver's
    smoothed) and the table's nodes (n, n, n, 3) (`node_cube_roots`)."""
    k, s_l, knee = _transfer_matrix(mu_r, sd_r, mu_d, sd_d, ratio_lo, ratio_hi)
    lut = _table(k, s_l, max(mu_r[0] + 16.0, 1.0) / 116.0, knee, nodes)
    flat = lut.reshape(-1)
    scale = np.float32((nodes.shape[0] - 1) / 255.0)
    n = r_low.shape[0]
    gain = np.empty((n, n, 3), np.float32)
    for i in range(n):
        for j in range(n):
            q0, q1, q2 = lut_colour(flat, nodes.shape[0], scale, np.float32(r_low[i, j, 0]),
                                    np.float32(r_low[i, j, 1]), np.float32(r_low[i, j, 2]))
            r0, r1, r2 = max(np.float64(q0), 0.0), max(np.float64(q1), 0.0), max(np.float64(q2), 0.0)
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
    return lut, gain
