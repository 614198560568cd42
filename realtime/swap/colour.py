"""Attribute preservation (AP-GAN §III: skin colour, illumination, make-up): the identity's render
takes the driver's colour and large-scale shading, in two steps that `kernels.swap_blend` applies
per pixel (``c = (A · r + b) · gain(u, v)``).

1. Colour: Reinhard's transfer in CIE Lab (D65) — each channel's skin mean and spread moved
   from the identity's to the driver's, ``lab' = (lab − μR) · σD / σR + μD`` — linearised about
   the two skin means, so that it is one linear map of RGB per frame:
   ``A₀ = J(μD)⁻¹ · diag(σD / σR) · J(μR)``, J the Jacobian of sRGB → Lab, and the offset
   ``b = rgb(μD) − A₀ · rgb(μR)`` folded into the matrix along the render's mean colour,
   ``A = A₀ + b · rgb(μR)ᵀ / |rgb(μR)|²`` (black stays black: a shadow is not tinted by a
   constant shift). Exact at the means, first order around them (the skin's spread is small);
   a face transferred onto itself gets A = I.
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
changes. A face transferred onto itself gets A = I and a gain of 1 (up to Lab round-off).

Array-module agnostic: everything runs on small arrays of the device context's module. On the
CPU (numpy) the same computation runs compiled (`realtime.swap.colour_numba`: ~1 ms a frame
against 2-3 ms on the 2-core Xeon, where the array version's cost is the fixed cost of ~100 small
numpy calls); `reference=True` keeps the array version there too (the tests hold the two to
each other).
"""
from __future__ import annotations

import numpy as np

from realtime.swap import colour_numba

__all__ = ["srgb_to_lab", "lab_to_srgb", "lab_jacobian", "gaussian_matrix", "normalised_blur", "robust_weights",
           "cell_sums", "ColourTransfer"]

_M = np.array([[0.4124564, 0.3575761, 0.1804375],
               [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _M.sum(1)     # D65 white of sRGB
_M_INV = np.linalg.inv(_M)
_D = 6.0 / 29.0


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


def lab_jacobian(rgb, xp=np, step: float = 0.5):
    """(..., 3, 3) d lab / d rgb at sRGB colours (..., 3) (0..255), central differences."""
    base = xp.asarray(rgb, dtype=np.float32)[..., None, :]
    e = xp.eye(3, dtype=np.float32) * step
    lab = srgb_to_lab(xp.stack([base + e, base - e]), xp)       # (2, ..., 3, 3): ±step along each
    return xp.swapaxes((lab[0] - lab[1]) / (2.0 * step), -1, -2)


class ColourTransfer:
    """The colour transfer and the gain field of one swap (see the module docstring), with the
    driver's temporal memory.

    `__call__(d, d_w, r, r_w)` takes the driver's and the render's colour samples, (2L, 2L, 3)
    0..255 (2×2 per cell), with their skin weights (2L, 2L), and returns float32 arrays of `xp`:
    (affine (3, 4) = [A | b], gain (L, L, 3), the driver's skin low-pass rgb (L, L, 3)).

    sigma_cells: the blur's σ in cells (the scale of lighting, not of features); keep: the share
    of the previous driver measurement kept each frame (0: none); shading / colour: how much of
    the driver's large-scale lightness (L) / colour (a, b) replaces the identity's where the
    driver's skin is near; ratio: the ranges of σD / σR for the lightness and for the colour
    (lightness: 1, only its mean moves — its spread is mostly the photo's lighting, which the
    gain field replaces; colour: damped to its floor at most — lower for a driver whose skin has
    little colour, down to none for a grey one (`colour_numba.GREY_CHROMA`) — and amplified
    little, or a pale photo would turn blotchy); gain_range: the range of the gain;
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

    def affine(self, mu_r, sd_r, mu_d, sd_d):
        """(3, 4) [A | 0]: Reinhard's Lab transfer linearised about the skin means, its offset
        folded into the matrix (a rank-one term along the render's mean colour), so that black
        stays black and a shadow is not tinted by a constant shift."""
        xp = self.xp
        lo, hi = self.ratio
        grey = xp.minimum(xp.hypot(mu_d[1], mu_d[2]) / colour_numba.GREY_CHROMA, 1.0)   # 0: colourless
        grey = grey * xp.minimum(xp.maximum(mu_d[0], 0.0) / xp.maximum(mu_r[0], 1.0), 1.0)   # darker: less
        lo = lo * xp.stack([xp.ones_like(grey), grey, grey])
        rgb_r, rgb_d = xp.clip(lab_to_srgb(xp.stack([mu_r, mu_d]), xp), *colour_numba.JACOBIAN_RGB)
        scale = xp.clip(sd_d / sd_r, lo, hi)
        j_r, j_d = lab_jacobian(xp.stack([rgb_r, rgb_d]), xp)
        a = xp.linalg.inv(j_d) @ (scale[:, None] * j_r)
        b = rgb_d - a @ rgb_r
        a = a + b[:, None] * rgb_r[None, :] / xp.maximum(rgb_r @ rgb_r, 1.0)
        return xp.concatenate([a, xp.zeros((3, 1), np.float32)], axis=1).astype(np.float32)

    def __call__(self, d, d_w, r, r_w):
        xp = self.xp
        d_low, d_den, mu_d, sd_d = self.driver(d, d_w)
        r_low, _, mu_r, sd_r = self._measure(r, r_w)
        if self.compiled:
            ab, gain = colour_numba.transfer(mu_r, sd_r, mu_d, sd_d, r_low, d_low, d_den, *self.ratio, self.mix,
                                             self.support * self.full, *self.gain_range)
            return ab, gain, d_low.astype(np.float32)
        ab = self.affine(mu_r, sd_r, mu_d, sd_d)
        r1 = xp.maximum(r_low @ ab[:, :3].T + ab[:, 3], 0.0)
        r1_lab = srgb_to_lab(r1, xp)
        k = xp.clip(d_den / (self.support * self.full), 0.0, 1.0)[..., None] * self.mix
        t = r1_lab + k * (srgb_to_lab(d_low, xp) - r1_lab)
        glo, ghi = self.gain_range
        gain = xp.clip(lab_to_srgb(t, xp) / xp.maximum(lab_to_srgb(r1_lab, xp), 1.0), glo, ghi)
        return ab, gain.astype(np.float32), d_low.astype(np.float32)
