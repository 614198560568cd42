"""Attribute preservation (AP-GAN §III: skin colour, illumination, make-up): the identity's render
takes the driver's colour and large-scale shading, in two steps that `kernels.swap_blend` applies
per pixel (``c = lut(r) · gain(u, v)``).

1. Colour: Reinhard's transfer in CIE Lab (D65) — each channel's skin mean and spread moved
   from the identity's to the driver's — made *proportional*: in ℓ = L + 16 (∝ ∛Y: Lab
   without its linear toe, `toe_free_lab`) its offset is scaled by ℓ / ℓR, so that it is a
   linear map K of ∛XYZ (`transfer_matrix`):
   ``ℓ' = ℓ · ℓD / ℓR``  and  ``ab' = S · ab + (ℓ / ℓR) · (abD − S · abR)``,
   S = diag(clip(σD / σR)) the chroma's spread ratios (a, b). Exact at the means (ab' − abD =
   S · (ab − abR) at the render's mean lightness: Reinhard's); black stays black and a colour
   scaled in light keeps its chromaticity (no constant shift tints a shadow). In the render's
   shadows (ℓ / ℓR under `colour_numba.SHADOW_HUE`, blended in over a ramp) a second map takes
   a colour's deviation along the render's mean hue (chroma) onto the driver's mean hue and
   drops the one across it (hue), unless the two skins' hues are alike: a painting's shadows
   turn in hue with their darkness (the Mona Lisa's varnished skin 82°, her shadows 56-68°),
   and that turn, carried by the per-axis transfer onto a pink driver (38°), made them magenta
   (12-25°; its 3×3 linearisation and its exact Lab form alike); now they take the driver's
   skin hue, as the driver's own shadows do. The lightness's spread ratio acts on log ℓ (1:
   an exposure change). S is the skins' spread ratio, and is for the skin: a colour much
   redder than the photo's skin (the lips, a lipstick: `colour_numba.RED_KNEE`, in σ of the
   skin's a*) goes over to a second pair of maps whose ratios are at least 1 (or the grey
   factor of a colourless or darker driver), so that a pale driver does not take the lips'
   red down with the skin's. The spread ratios are not the skins' chroma ratio: where S · abR
   has more of the driver's hue than abD (a driver with less chroma), the damped maps would
   take the render's grey past grey, away from the driver's hue, and a colour paler than the
   skin (a painting's highlight) towards cyan; their ratio along abR is lowered to keep grey on
   the driver's side, down to the colour's floor at most (`not_past_grey`). Not linear in
   sRGB, the transfer is tabulated per frame on a `LUT_NODES`³ grid of sRGB (`transfer_lut`),
   which `kernels.swap_blend` applies per pixel (trilinear). A face transferred onto itself
   gets K = I: the identity table.
2. Shading: both faces are sampled on an L×L grid of crop cells (skin only: the lips, eyes,
   brows and the outline left out, and samples much darker than the skin's mean: hair); a
   normalised Gaussian blur (σ = a few cells: the scale of lighting, not of features) turns each
   into a skin low-pass field defined everywhere (extrapolated over the features). With R the
   colour-transferred render's field and D the driver's, in Lab,
   ``T = R + k · w · (D − R)``, k the driver's skin support nearby and w a weight per channel
   (lightness: `shading`, 1 by default: the driver's large-scale light; a/b: `colour`, less,
   since step 1 matched the colour already), and ``gain = rgb(T) / rgb(R)``.

Multiplying by the gain keeps the identity's own detail (its features, its skin texture) on top
of the driver's light. The driver's side is smoothed in time (its statistics and its low-pass
field, exponentially: `keep`) so that the colour does not pump when the mouth opens or the mask
changes. A face transferred onto itself gets the identity table and a gain of 1 (up to Lab round-off).

Array-module agnostic: everything runs on small arrays of the device context's module. On the
CPU (numpy) the same computation runs compiled (`realtime.swap.colour_numba`: ~1 ms a frame
against 2-3 ms on the 2-core Xeon, where the array version's cost is the fixed cost of ~100 small
numpy calls); `reference=True` keeps the array version there too (the tests hold the two to
each other).
"""
from __future__ import annotations

import numpy as np

from realtime.swap import colour_numba

__all__ = ["srgb_to_lab", "lab_to_srgb", "toe_free_lab", "transfer_matrix", "not_past_grey", "transfer_lut",
           "transfer_colours",
           "lut_apply", "gaussian_matrix", "normalised_blur", "robust_weights", "cell_sums", "ColourTransfer",
           "LUT_NODES"]

_M = np.array([[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _M.sum(1)     # D65 white of sRGB
_M_INV = np.linalg.inv(_M)
_D = 6.0 / 29.0
#: nodes of the colour table along each sRGB axis (`transfer_lut`): 0, 255 / 16, .., 255
LUT_NODES = colour_numba.LUT_NODES


def srgb_to_lab(rgb, xp=np):
    """(..., 3) sRGB values 0..255 → CIE Lab (D65), float32."""
    c = xp.clip(rgb.astype(np.float32) / np.float32(255.0), 0.0, 1.0)
    lin = xp.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ xp.asarray((_M / _WHITE[:, None]).T.astype(np.float32))
    f = xp.where(xyz > _D ** 3, xp.cbrt(xp.maximum(xyz, 0.0)), xyz / (3 * _D * _D) + 4.0 / 29.0)
    lab = xp.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                    200.0 * (f[..., 1] - f[..., 2])], axis=-1)
    return lab.astype(np.float32)


def lab_to_srgb(lab, xp=np):
    """(..., 3) CIE Lab (D65) → sRGB 0..255 (not clipped), float32."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = xp.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = xp.where(f > _D, f ** 3, 3 * _D * _D * (f - 4.0 / 29.0))
    lin = xyz @ xp.asarray((_M_INV * _WHITE[None, :]).T.astype(np.float32))
    lin = xp.maximum(lin, 0.0)
    c = xp.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)
    return (c * 255.0).astype(np.float32)


def gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) float32 K with K[i, j] = exp(−(i − j)² / 2σ²): K @ X @ Kᵀ blurs an n×n image
    (unnormalised: `normalised_blur` divides by the blurred weights)."""
    i = np.arange(n, dtype=np.float64)
    return np.exp(-((i[:, None] - i[None, :]) ** 2) / (2.0 * sigma * sigma)).astype(np.float32)


def _blur(k, x, xp):
    """K @ X @ Kᵀ of every channel of (L, L, C) `x`: two matrix products of the channels side by side."""
    n, c = x.shape[0], x.shape[2]
    y = (k @ x.reshape(n, n * c)).reshape(n, n, c)                      # along rows
    y = (k @ xp.ascontiguousarray(y.transpose(1, 0, 2)).reshape(n, n * c)).reshape(n, n, c)
    return y.transpose(1, 0, 2)                                           # along columns


def normalised_blur(k, weighted, weights, xp=np, eps: float = 1e-6):
    """(blur(X·w) / blur(w), blur(w)) for `weighted` = X·w (L, L, C) and `weights` w (L, L): a
    weighted low-pass defined wherever some weight lies within reach of the blur."""
    both = _blur(k, xp.concatenate([weighted, weights[..., None]], axis=-1), xp)
    den = both[..., -1]
    return both[..., :-1] / xp.maximum(den, eps)[..., None], den


def _stats(lab, w, xp):
    """Weighted mean and standard deviation per channel of (..., 3) values with weights (...)."""
    flat, ww = lab.reshape(-1, 3), w.reshape(-1)
    total = xp.maximum(ww.sum(), 1e-6)
    mu = ww @ flat / total
    var = ww @ (flat * flat) / total - mu * mu
    return mu, xp.sqrt(xp.maximum(var, 1e-6))


def cell_sums(x):
    """2×2 sums of an (N, N[, C]) array of samples: (N/2, N/2[, C])."""
    return x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]


def _luma(rgb):
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def robust_weights(samples, weights, k=None, xp=np, lo: float = 0.45, hi: float = 0.65):
    """`weights` without the samples much darker than the skin (hair over it, a nostril, a
    fold): times a ramp, from `lo` (0) to `hi` (1), of a sample's luma over the skin's — the
    weighted mean, or with a blur matrix `k` the weighted low-pass at the sample's cell (relative
    to the *local* skin, a face in side light keeps its shadowed half)."""
    y = _luma(samples)
    if k is None:
        ref = (y * weights).sum() / xp.maximum(weights.sum(), 1e-6)
    else:
        low, _ = normalised_blur(k, cell_sums(samples * weights[..., None]), cell_sums(weights), xp)
        ref = xp.repeat(xp.repeat(_luma(low), 2, axis=0), 2, axis=1)
    return weights * xp.clip((y / xp.maximum(ref, 1.0) - lo) / (hi - lo), 0.0, 1.0)


def toe_free_lab(rgb, xp=np):
    """(..., 3) sRGB 0..255 → (..., 3) float32 (ℓ, a, b): CIE Lab (D65) with ℓ = L + 16, without
    Lab's linear toe (ℓ = 116 ∛Y everywhere, a = 500 (∛X − ∛Y), b = 200 (∛Y − ∛Z), X, Y, Z over
    the white): 0 at black, and every channel proportional to ∛ of the light (a colour 8 times
    darker: all three halved). Above L 8 (sRGB grey 25) it is Lab, ℓ = L + 16."""
    f = _cube_root_xyz(rgb, xp)
    return xp.stack([116.0 * f[..., 1], 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                    axis=-1).astype(np.float32)


def _cube_root_xyz(rgb, xp):
    c = xp.clip(rgb.astype(np.float32) / np.float32(255.0), 0.0, 1.0)
    lin = xp.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return xp.cbrt(xp.maximum(lin @ xp.asarray(colour_numba.TO_XYZ.T.astype(np.float32)), 0.0))


def transfer_matrix(mu_r, sd_r, mu_d, sd_d, ratio_lo, ratio_hi, xp=np):
    """The colour transfer of the module docstring from the render's (r) and the driver's (d) Lab
    skin means and spreads (3,): (K (4, 3, 3) float32, the linear maps of ∛XYZ (over the white)
    at the skin's lightness and above [0] and in its shadows [1], and the same with the colour
    kept [2, 3] (`colour_numba.RED_KNEE`), the lightness's spread ratio sL (a 0-d float32), the
    knee (2,) float32: the render's skin a* over its ℓ and its a* spread) —
    `colour_numba.transfer_node` blends and applies them.

    ratio_lo / ratio_hi (3,): the range of σD / σR per Lab channel, the colour's floor lowered
    for a grey or darker driver (`colour_numba.GREY_CHROMA`). The damped maps [0, 1] go through
    `not_past_grey`; the kept ones [2, 3] (the lips' red, an offset kept) do not."""
    lo, hi = ratio_lo, ratio_hi
    grey = xp.minimum(xp.hypot(mu_d[1], mu_d[2]) / colour_numba.GREY_CHROMA, 1.0)   # 0: colourless
    grey = grey * xp.minimum(xp.maximum(mu_d[0], 0.0) / xp.maximum(mu_r[0], 1.0), 1.0)   # darker: less
    lo = lo * xp.stack([xp.ones_like(grey), grey, grey])
    scale = xp.clip(sd_d / sd_r, lo, hi)
    ell_r, ell_d = xp.maximum(mu_r[0] + 16.0, 1.0), xp.maximum(mu_d[0] + 16.0, 1.0)
    # how alike the two skins' hues are: 1 the same (or either grey), 0 `SHADOW_HUE[3]` degrees apart
    qa = mu_d[1] * mu_r[1] + mu_d[2] * mu_r[2] + colour_numba.GREY_CHROMA ** 2
    qb = mu_d[2] * mu_r[1] - mu_d[1] * mu_r[2]
    full, none = np.radians(colour_numba.SHADOW_HUE[2:])
    alike = xp.clip((none - xp.abs(xp.arctan2(qb, qa))) / (none - full), 0.0, 1.0)
    # lit: Reinhard's spread ratios on a and b; in shadow the deviation along the render's mean
    # hue (chroma) goes along the driver's, at the ratio the lit map gives it, and the one
    # across it (hue) goes only as far as the hues are alike
    u_r = mu_r[1:] / xp.maximum(xp.hypot(mu_r[1], mu_r[2]), 1e-6)
    u_d = mu_d[1:] / xp.maximum(xp.hypot(mu_d[1], mu_d[2]), colour_numba.GREY_CHROMA)
    zero = xp.zeros_like(alike)
    ks = []
    # damped (Reinhard's ratios), then kept (`colour_numba.RED_KNEE`: the ratios at least 1, or
    # as much as a grey or darker driver has colour)
    for kept, (sa, sb) in enumerate(((scale[1], scale[2]), (xp.maximum(scale[1], grey), xp.maximum(scale[2], grey)))):
        radial = sa * u_r[0] * u_r[0] + sb * u_r[1] * u_r[1]
        lit = xp.stack([xp.stack([sa, zero]), xp.stack([zero, sb])])
        for s2 in (lit, alike * lit + (1.0 - alike) * radial * (u_d[:, None] * u_r[None, :])):
            if not kept:
                s2 = not_past_grey(s2, mu_r[1:], mu_d[1:], lo[1], xp)
            v = (mu_d[1:] - s2 @ mu_r[1:]) / ell_r
            m = xp.stack([xp.stack([ell_d / ell_r, zero, zero]),
                          xp.stack([v[0], s2[0, 0], s2[0, 1]]),
                          xp.stack([v[1], s2[1, 0], s2[1, 1]])])
            ks.append(xp.asarray(colour_numba.TOE_FREE_INV) @ m @ xp.asarray(colour_numba.TOE_FREE))
    knee = xp.stack([mu_r[1] / ell_r, xp.maximum(sd_r[1], colour_numba.KNEE_SPREAD)])
    return xp.stack(ks).astype(np.float32), scale[0].astype(np.float32), knee.astype(np.float32)


def not_past_grey(s2, ab_r, ab_d, floor, xp=np):
    """The chroma part S (2, 2) of one of `transfer_matrix`'s maps (``ab' = S · ab + (ℓ / ℓR) · g``,
    g = abD − S · abR: where the render's grey goes, at the render's mean lightness), with the part
    of g that lies past grey, on the far side from the driver's skin hue, taken off — as far as
    the colour's floor `floor` (the least ratio of σD / σR on a and b) allows: S plus a rank-one
    term along the render's skin hue abR that lowers the share of S · abR along the driver's
    hue to |abD| (a ratio of |abD| / |abR|, the skins' chroma ratio), or to `floor` · |abR| if
    that is more (the render's colour variation keeps the share the floor promises). Grey then
    goes no further than grey along the driver's hue (what g has across it, Reinhard's per-axis
    turn, stays), and a colour a share of the way from grey to the render's skin (at its
    lightness) lands that share of the way to the driver's skin. S is unchanged where g is on
    the driver's side already (a face onto itself: g = 0), and across abR (a hue's deviation).

    Why: Reinhard's per-axis ratios are the skins' spreads, not their chromas: onto a driver with
    less chroma than S · abR (s0, a painting, C* 24 at 56°, onto d11, C* 14 at 39°, S =
    diag(1.2, 0.69); onto d0, C* 17 at 52°, S = diag(0.99, 1.2)) g lay past grey (C* 7 at 225°;
    11 at 255°) and the painting's pale forehead, short of its skin's chroma at its lightness,
    came out grey-cyan beside the driver's warm skin: on d11 C* 8.5 at 67° against the
    driver's 14.3 at 51° there (10.4 at 63° now; hues past 85° or under −60°, green to blue, on
    2 % of the face's pixels, 0.2 % now), on d0 C* 10.3 against 15.8 (13.3 now). Where the
    floor binds (s1 <- d14: s1's C* 34 against d14's 15, at 0.5) it is left as it is: the floor
    is a promise about the render's colour variation, and only near-grey colours would cross.
    A driver with less chroma than `colour_numba.GREY_CHROMA` has a hue that is mostly its
    noise: the correction fades out with its chroma (at 0.3 it swung the forehead's a*b* over 8.9
    units as that hue went round, 0.7 before the correction)."""
    g = ab_d - s2 @ ab_r
    n_d = xp.hypot(ab_d[0], ab_d[1])
    u = ab_d / xp.maximum(n_d, 1e-6)
    n_r2 = ab_r @ ab_r
    # ≤ 0: how far g lies past grey along the driver's hue, less what the floor keeps
    past = xp.minimum(g @ u + xp.maximum(floor * xp.sqrt(n_r2) - n_d, 0.0), 0.0)
    past = past * xp.minimum(n_d / colour_numba.GREY_CHROMA, 1.0)
    # bounded: −past ≤ |S · abR| ≤ ‖S‖ |abR|, so the term is at most ‖S‖ however grey the render
    return s2 + (past * u)[:, None] * ab_r[None, :] / xp.maximum(n_r2, 1e-6)


def transfer_lut(k, s_l, ell_r, knee, n: int = LUT_NODES, xp=np):
    """(n, n, n, 3) float32 table of the transfer (K (4, 3, 3), sL, knee of `transfer_matrix`; ℓR
    the render's mean ℓ) at the sRGB nodes (i, j, l) · 255 / (n − 1): sRGB 0..255, ≥ 0, not
    clipped above."""
    g = xp.linspace(0.0, 255.0, n, dtype=np.float32)
    return transfer_colours(k, s_l, ell_r, knee, xp.stack(xp.meshgrid(g, g, g, indexing="ij"), axis=-1), xp)


def transfer_colours(k, s_l, ell_r, knee, rgb, xp=np):
    """The transfer of `transfer_lut` at any sRGB colours (..., 3) 0..255, exactly (no table)."""
    f = _cube_root_xyz(rgb, xp)
    rel = xp.maximum(f[..., 1], 1e-6) * (116.0 / ell_r)            # ℓ / ℓR
    lo, hi = colour_numba.SHADOW_HUE[:2]
    lit = xp.clip((rel - lo) / (hi - lo), 0.0, 1.0)[..., None]
    red = (500.0 * (f[..., 0] - f[..., 1]) - 116.0 * f[..., 1] * knee[0]) / knee[1]
    k0, k1 = colour_numba.RED_KNEE
    kept = xp.clip((red - k0) / (k1 - k0), 0.0, 1.0)[..., None]
    damped = lit * (f @ k[0].T) + (1.0 - lit) * (f @ k[1].T)
    f2 = damped + kept * (lit * (f @ k[2].T) + (1.0 - lit) * (f @ k[3].T) - damped)
    f2 = f2 * (rel ** (s_l - 1.0))[..., None]
    xyz = xp.maximum(f2, 0.0) ** 3
    lin = xp.maximum(xyz @ xp.asarray(colour_numba.FROM_XYZ.T.astype(np.float32)), 0.0)
    c = xp.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)
    return (c * 255.0).astype(np.float32)


def lut_apply(lut, rgb, xp=np):
    """(..., 3) float32: the (n, n, n, 3) table `lut` (nodes at sRGB i · 255 / (n − 1)) at the sRGB
    colours `rgb` (..., 3), trilinear; beyond 0..255 the end cells extend linearly (a table of
    an affine map gives that map everywhere) — `kernels.swap_blend`'s `colour`."""
    n = lut.shape[0]
    x = rgb.astype(np.float32) * np.float32((n - 1) / 255.0)
    i = xp.clip(xp.floor(x), 0, n - 2).astype(np.int32)
    t = x - i
    out = 0.0
    for corner in range(8):
        di, dj, dl = corner >> 2, (corner >> 1) & 1, corner & 1
        w = ((t[..., 0] if di else 1.0 - t[..., 0]) * (t[..., 1] if dj else 1.0 - t[..., 1])
             * (t[..., 2] if dl else 1.0 - t[..., 2]))
        out = out + w[..., None] * lut[i[..., 0] + di, i[..., 1] + dj, i[..., 2] + dl]
    return out.astype(np.float32)


class ColourTransfer:
    """The colour transfer and the gain field of one swap (see the module docstring), with the
    driver's temporal memory.

    `__call__(d, d_w, r, r_w)` takes the driver's and the render's colour samples, (2L, 2L, 3)
    0..255 (2×2 per cell), with their skin weights (2L, 2L), and returns float32 arrays of `xp`:
    (the colour table (n, n, n, 3) of `transfer_lut`, gain (L, L, 3), the driver's skin low-pass
    rgb (L, L, 3)).

    sigma_cells: the blur's σ in cells (the scale of lighting, not of features); keep: the share
    of the previous driver measurement kept each frame (0: none); shading / colour: how much of
    the driver's large-scale lightness (L) / colour (a, b) replaces the identity's where the
    driver's skin is near; ratio: the ranges of σD / σR for the lightness and for the colour
    (lightness: 1, only its mean moves — its spread is mostly the photo's lighting, which the
    gain field replaces; colour: damped to its floor at most — lower for a driver whose skin has
    little colour, down to none for a grey one (`colour_numba.GREY_CHROMA`) — and amplified
    little, or a pale photo would turn blotchy; not damped past `colour_numba.RED_KNEE`: the
    lips); gain_range: the range of the gain;
    support: the blurred driver skin weight (fraction of a full neighbourhood) at which the
    driver's own field is fully trusted; reference: numpy arrays go through the array version
    rather than the compiled one (see the module docstring).
    """

    def __init__(self, cells: int, xp=np, sigma_cells: float = 4.0, keep: float = 0.5,
                 shading: float = 1.0, colour: float = 0.5,
                 ratio: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (0.5, 1.2)),
                 gain_range: tuple[float, float] = (0.25, 4.0), support: float = 0.15,
                 reference: bool = False):
        self.xp = xp
        self.compiled = xp is np and not reference
        self.cells = int(cells)
        k = gaussian_matrix(self.cells, sigma_cells)
        self.k = xp.asarray(k)
        self.full = float((k.sum(1)[:, None] * k.sum(1)[None, :]).max())   # blur(1) at the centre
        self.keep = float(keep)
        self.mix = xp.asarray(np.array([shading, colour, colour], np.float32))
        (l_lo, l_hi), (c_lo, c_hi) = ratio
        self.ratio = (xp.asarray(np.array([l_lo, c_lo, c_lo], np.float32)),
                      xp.asarray(np.array([l_hi, c_hi, c_hi], np.float32)))
        self.gain_range, self.support = gain_range, float(support)
        self._nodes = colour_numba.node_cube_roots(LUT_NODES) if self.compiled else None
        self.reset()

    def reset(self) -> None:
        self._d = None      # (low-pass rgb, support, μ, σ) of the driver, smoothed

    def _measure(self, samples, weights):
        """(rgb low-pass (L, L, 3), blurred weight (L, L), Lab μ, Lab σ) of one face's samples:
        the statistics of its brighter skin (hair and shadows left out), the low-pass of all its
        skin but what is much darker than the skin around it."""
        xp = self.xp
        if self.compiled:
            return colour_numba.measure(samples, weights, self.k)
        w = robust_weights(samples, weights, self.k, xp)
        low, den = normalised_blur(self.k, cell_sums(samples * w[..., None]), cell_sums(w), xp)
        mu, sigma = _stats(srgb_to_lab(samples, xp), robust_weights(samples, weights, None, xp, 0.5, 0.7), xp)
        return low, den, mu, sigma

    def driver(self, samples, weights):
        """The driver's (rgb low-pass, support, Lab μ, Lab σ), smoothed in time."""
        now = self._measure(samples, weights)
        if self._d is not None and self.keep > 0.0:
            a = self.keep
            now = tuple(a * p + (1.0 - a) * n for p, n in zip(self._d, now))
        self._d = now
        return now

    def table(self, mu_r, sd_r, mu_d, sd_d):
        """(n, n, n, 3) float32: the colour transfer tabulated over sRGB (`transfer_lut`)."""
        k, s_l, knee = transfer_matrix(mu_r, sd_r, mu_d, sd_d, *self.ratio, self.xp)
        return transfer_lut(k, s_l, self.xp.maximum(mu_r[0] + 16.0, 1.0), knee, LUT_NODES, self.xp)

    def __call__(self, d, d_w, r, r_w):
        xp = self.xp
        d_low, d_den, mu_d, sd_d = self.driver(d, d_w)
        r_low, _, mu_r, sd_r = self._measure(r, r_w)
        if self.compiled:
            lut, gain = colour_numba.transfer(mu_r, sd_r, mu_d, sd_d, r_low, d_low, d_den, *self.ratio, self.mix,
                                              self.support * self.full, *self.gain_range, self._nodes)
            return lut, gain, d_low.astype(np.float32)
        lut = self.table(mu_r, sd_r, mu_d, sd_d)
        r1 = xp.maximum(lut_apply(lut, r_low, xp), 0.0)
        r1_lab = srgb_to_lab(r1, xp)
        k = xp.clip(d_den / (self.support * self.full), 0.0, 1.0)[..., None] * self.mix
        t = r1_lab + k * (srgb_to_lab(d_low, xp) - r1_lab)
        glo, ghi = self.gain_range
        gain = xp.clip(lab_to_srgb(t, xp) / xp.maximum(lab_to_srgb(r1_lab, xp), 1.0), glo, ghi)
        return lut, gain.astype(np.float32), d_low.astype(np.float32)
