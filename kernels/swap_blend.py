"""`swap_blend`: the face swap's paste-back (DESIGN §5b): the identity's face crop, re-lit by a
low-resolution gain field, blended into the driver's own frame through a soft mask, with the
driver's own pixels kept where the crop says so (mouth interior, eye whites) and where
something covers the face (an occluder: far from the driver's skin). One pass over the frame
pixels that the crop covers; every other pixel is the frame's, exactly.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numba import njit, prange

from ._dispatch import array_module, array_module_name, lookup, register
from ._sampling import FASTMATH, _lerp, bilinear_into, bilinear_tap
from ._validate import check_array, check_float, check_same_module

__all__ = ["swap_blend", "affine_table", "LOW_CHANNELS", "FAN_CHANNELS", "OCCLUSION_DEFAULTS"]

#: fan channels: [weight w, w·x_src, w·y_src] (x_src, y_src: frame pixels)
FAN_CHANNELS = 3
#: low channels: [gain r, g, b, the driver's skin low-pass r, g, b, occlusion allowed]
LOW_CHANNELS = 7
#: (dark_lo, dark_hi, chroma_lo, chroma_hi): a driver pixel whose luma is below dark_lo times
#: the skin low-pass's (fully) .. dark_hi (not at all), or whose normalised colour is
#: chroma_hi (fully) .. chroma_lo (not at all) away from it, is an occluder.
OCCLUSION_DEFAULTS = (0.45, 0.62, 0.22, 0.38)


def swap_blend(frame, render, alpha, fan, low, frame_to_crop, colour=None, occlusion=OCCLUSION_DEFAULTS,
               box=None, out=None):
    """Blend the identity's crop `render` into the driver's `frame`.

    For a frame pixel (x, y) whose crop position (u, v) = frame_to_crop · (x, y, 1) lies inside
    the crop, with the crop's samples (bilinear, border clamped) ``a = alpha(u, v)``,
    ``f = fan(u, v)``, ``r = render(u, v)`` and the low-resolution ``l = low((u − c0) / cs, (v − c0) / cs)``
    (cs = crop side / low side, c0 = (cs − 1) / 2: the low grid's cell centres):

    - alpha = min(a, 1); alpha ≤ 0: the pixel is left as it is (exactly `frame`);
    - colour c = T(r) · l[0:3], T the colour table `colour` at r, trilinear (the identity in the
      driver's colour, re-lit with its large-scale shading);
    - fan weight w = clip(f[0], 0, 1); w > 0: c = w · frame(f[1] / f[0], f[2] / f[0]) + (1 − w)·c
      (the driver's own pixels mapped into the identity's mouth and eye openings);
    - occluder (something in front of the driver's face: hair, glasses, a hand-held object):
      o = l[6] · max(dark, colour) of the frame pixel p against the driver's skin low-pass
      s = l[3:6]: dark = ramp of luma(p) / luma(s) from dark_hi (0) down to dark_lo (1), colour
      = ramp of |p / luma(p) − s / luma(s)| from chroma_lo (0) up to chroma_hi (1) (luma + 1
      each);
    - m = alpha · (1 − o); out = round(m · c + (1 − m) · p), clipped to 0..255.

    Args:
        frame: (H, W, 3) uint8, the driver's frame.
        render: (S, S', 3) float32 0..255, the identity's face crop.
        alpha: (S, S') float32, the identity's blend weight (0 outside its face).
        fan: (S, S', 3) float32, [w, w·x_src, w·y_src]: where and from which frame pixels
            (x_src, y_src) the driver's own pixels show.
        low: (L, L', 7) float32, [gain rgb, the driver's skin low-pass rgb, occlusion allowed];
            the low grid spans the crop: cs = S / L = S' / L' must hold.
        frame_to_crop: (2, 3) float32/float64 invertible affine, frame pixel → crop pixel.
        colour: (N, N, N, 3) float32, N ≥ 2, a colour map of the render tabulated over sRGB (array
            of the frame's module): node [i, j, k] holds the colour of the render colour
            (i, j, k) · 255 / (N − 1); between the nodes trilinear, beyond 0..255 the end cells
            extended linearly (`affine_table` makes the 2-node table of an affine map, exact
            everywhere). None: the identity.
        occlusion: (dark_lo, dark_hi, chroma_lo, chroma_hi), see `OCCLUSION_DEFAULTS`.
        box: optional (u0, u1, v0, v1) crop pixels outside which alpha is 0 (the caller's
            promise): only the frame pixels mapping into it are visited. None: the whole crop.
        out: optional (H, W, 3) uint8 that does not overlap `frame` (the mouth and eye
            openings read the frame around each pixel, so it cannot be blended in place).
            None: a new array.

    Returns:
        (H, W, 3) uint8.
    """
    k = "swap_blend"
    hh, ww, _ = check_array(k, "frame", frame, ("H", "W", 3), [np.uint8])
    s, s2, _ = check_array(k, "render", render, ("S", "S'", 3), [np.float32])
    check_array(k, "alpha", alpha, (s, s2), [np.float32])
    check_array(k, "fan", fan, (s, s2, FAN_CHANNELS), [np.float32])
    lh, lw, _ = check_array(k, "low", low, ("L", "L'", LOW_CHANNELS), [np.float32])
    check_array(k, "frame_to_crop", frame_to_crop, (2, 3), [np.float32, np.float64])
    if colour is None:
        colour = _IDENTITY if array_module_name(frame) == "numpy" else _identity_like(frame)
    n = check_array(k, "colour", colour, ("N", "N", "N", 3), [np.float32])[0]
    if n < 2 or tuple(colour.shape[:3]) != (n, n, n):
        raise ValueError(f"{k}: colour must be an (N, N, N, 3) table with N >= 2, got {tuple(colour.shape)}")
    for name, x in (("render", render), ("alpha", alpha), ("fan", fan), ("low", low), ("colour", colour)):
        check_same_module(k, "frame", frame, name, x)
    if s == 0 or s2 == 0 or lh == 0 or lw == 0:
        raise ValueError(f"{k}: render and low must be non-empty, got {tuple(render.shape)} and {tuple(low.shape)}")
    if s * lw != s2 * lh:
        raise ValueError(f"{k}: low {tuple(low.shape[:2])} must cover render {tuple(render.shape[:2])} "
                         f"with square cells (S / L = S' / L')")
    occ = tuple(check_float(k, f"occlusion[{i}]", v) for i, v in enumerate(occlusion))
    if len(occ) != 4 or not (occ[0] < occ[1] and occ[2] < occ[3]):
        raise ValueError(f"{k}: occlusion must be (dark_lo < dark_hi, chroma_lo < chroma_hi), got {occlusion}")
    a = frame_to_crop.get() if array_module_name(frame_to_crop) == "cupy" else frame_to_crop
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{k}: frame_to_crop must be finite, got {a.tolist()}")
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if abs(det) < 1e-12:
        raise ValueError(f"{k}: frame_to_crop must be invertible, got determinant {det} for {a.tolist()}")
    impl = lookup(k, frame)
    if out is None:
        out = frame.copy()
        copy = False
    else:
        check_array(k, "out", out, (hh, ww, 3), [np.uint8])
        check_same_module(k, "frame", frame, "out", out)
        if out is frame:
            raise ValueError(f"{k}: out must not be frame (the openings read the frame's neighbours)")
        copy = True
    roi = frame_roi(a, s, s2, hh, ww, box)
    return impl(frame, render, alpha, fan, low, colour, a, occ, roi, copy, out)


def affine_table(affine) -> np.ndarray:
    """(2, 2, 2, 3) float32 colour table (`swap_blend`'s `colour`) of the affine colour map
    ``c = A · r + b``, affine (3, 4) [A | b] (numpy): exact for every colour (trilinear
    interpolation, extended beyond the end nodes, reproduces an affine map)."""
    ab = np.asarray(affine, dtype=np.float64)
    g = np.array([0.0, 255.0])
    rgb = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1)
    return (rgb @ ab[:, :3].T + ab[:, 3]).astype(np.float32)


_IDENTITY = affine_table(np.concatenate([np.eye(3), np.zeros((3, 1))], axis=1))


def _identity_like(frame):
    return array_module(frame).asarray(_IDENTITY)


def frame_roi(a: np.ndarray, h: int, w: int, hh: int, ww: int, box=None) -> tuple[int, int, int, int]:
    """Inclusive frame pixel box (x0, x1, y0, y1) bounding the (h, w) crop's pixel area (or the
    crop-pixel `box` (u0, u1, v0, v1) within it) mapped back to an (hh, ww) frame (empty when
    x0 > x1 or y0 > y1)."""
    inv = cv2.invertAffineTransform(a)
    u0, u1, v0, v1 = -0.5, w - 0.5, -0.5, h - 0.5
    if box is not None:
        u0, u1 = max(u0, float(box[0])), min(u1, float(box[1]))
        v0, v1 = max(v0, float(box[2])), min(v1, float(box[3]))
        if u0 > u1 or v0 > v1:
            return 0, -1, 0, -1
    corners = np.array([[u0, v0, 1], [u1, v0, 1], [u0, v1, 1], [u1, v1, 1]])
    p = corners @ inv.T
    x0 = max(0, int(math.floor(p[:, 0].min())) - 1)
    x1 = min(ww - 1, int(math.ceil(p[:, 0].max())) + 1)
    y0 = max(0, int(math.floor(p[:, 1].min())) - 1)
    y1 = min(hh - 1, int(math.ceil(p[:, 1].max())) + 1)
    return x0, x1, y0, y1


# The pixel loop indexes its arrays with unsigned integers: numba wraps a negative signed index
# around (a compare and a select per index), which LLVM cannot drop here; with the ~60 array
# reads of a pixel that cost 13-18 % of the kernel's time (s1 <- d13 at 720p, 150k pixels
# blended: 8.2-8.6 → 7.1-7.7 ms of CPU a frame, the two threads together). The arithmetic is
# `kernels._sampling`'s, value for value: the output is the same, bit for bit.
_U1 = np.uint64(1)
_U3 = np.uint64(3)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _taps(h, w, x, y):
    """`_sampling.bilinear_weights` with unsigned taps: (x0, y0, x1, y1, fx, fy) at (x, y) in an
    (h, w) image, border clamped; (x, y) must not be NaN."""
    x = min(max(x, np.float32(0.0)), np.float32(w - 1))
    y = min(max(y, np.float32(0.0)), np.float32(h - 1))
    x0 = np.uint64(x)  # floor: x >= 0
    y0 = np.uint64(y)
    return (x0, y0, min(x0 + _U1, np.uint64(w - 1)), min(y0 + _U1, np.uint64(h - 1)),
            np.float32(x - np.float32(x0)), np.float32(y - np.float32(y0)))


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lut_node(x, n):
    """`_sampling._lut_cell` with an unsigned cell: (cell i clamped to 0..n − 2, fraction t)."""
    i = min(max(int(x), 0), n - 2)
    return np.uint64(i), np.float32(x - np.float32(i))


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lut_one(flat, p, di, dj, t0, t1, t2):
    """`_sampling._lut_channel` with unsigned offsets."""
    c00 = _lerp(flat[p], flat[p + _U3], t2)
    c01 = _lerp(flat[p + dj], flat[p + dj + _U3], t2)
    c10 = _lerp(flat[p + di], flat[p + di + _U3], t2)
    c11 = _lerp(flat[p + di + dj], flat[p + di + dj + _U3], t2)
    return _lerp(_lerp(c00, c01, t1), _lerp(c10, c11, t1), t0)


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _lut(flat, n, scale, r0, r1, r2):
    """`_sampling.lut_colour` with unsigned offsets: the (n, n, n, 3) table `flat` (its C-order
    values in one row) at the colour (r0, r1, r2), trilinear, the end cells extended."""
    i, t0 = _lut_node(r0 * scale, n)
    j, t1 = _lut_node(r1 * scale, n)
    k, t2 = _lut_node(r2 * scale, n)
    dj = np.uint64(3 * n)
    di = dj * np.uint64(n)
    p = i * di + j * dj + _U3 * k
    return (_lut_one(flat, p, di, dj, t0, t1, t2), _lut_one(flat, p + _U1, di, dj, t0, t1, t2),
            _lut_one(flat, p + np.uint64(2), di, dj, t0, t1, t2))


@njit(cache=True, nogil=True, inline="always")
def _ramp(x, lo, hi):
    """0 at lo, 1 at hi, linear between, clamped (lo < hi)."""
    t = (x - lo) / (hi - lo)
    return min(max(t, np.float32(0.0)), np.float32(1.0))


@njit(cache=True, nogil=True, inline="always", fastmath=FASTMATH)
def _occluder(q0, q1, q2, s0, s1, s2, dark_lo, dark_hi, chroma_lo, chroma_hi):
    """How much the pixel (q0, q1, q2) is not the skin (s0, s1, s2) around it (0..1)."""
    yq = np.float32(0.299) * q0 + np.float32(0.587) * q1 + np.float32(0.114) * q2 + np.float32(1.0)
    ys = np.float32(0.299) * s0 + np.float32(0.587) * s1 + np.float32(0.114) * s2 + np.float32(1.0)
    dark = np.float32(1.0) - _ramp(yq / ys, dark_lo, dark_hi)
    d0 = q0 / yq - s0 / ys
    d1 = q1 / yq - s1 / ys
    d2 = q2 / yq - s2 / ys
    hue = _ramp(np.float32(math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)), chroma_lo, chroma_hi)
    return max(dark, hue)


@njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _swap_blend_numba(frame, render, alpha3, fan, low, colour, a, dark_lo, dark_hi, chroma_lo, chroma_hi,
                      x0, x1, y0, y1, copy, out):
    # One set of bilinear taps serves the crop-sized arrays (alpha, render, fan) and one the low
    # grid; the fan's coordinates and the occluder's skin low-pass are read only where they are
    # used (the openings; where occlusion is allowed): 30 % faster than a sampler call per array.
    hh = frame.shape[0]
    ww = frame.shape[1]
    h = render.shape[0]
    w = render.shape[1]
    lh = low.shape[0]
    lw = low.shape[1]
    cs = np.float32(h) / np.float32(lh)
    c0 = (cs - np.float32(1.0)) / np.float32(2.0)
    if copy:
        for y in prange(hh):
            for x in range(ww):
                for c in range(3):
                    out[y, x, c] = frame[y, x, c]
    umax = w - 0.5
    vmax = h - 0.5
    n = colour.shape[0]
    flat = colour.reshape(-1)
    scale = np.float32((n - 1) / 255.0)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for y in prange(y0, y1 + 1):
        sv = np.empty(3, dtype=np.float32)
        for x in range(x0, x1 + 1):
            u = a[0, 0] * x + a[0, 1] * y + a[0, 2]
            v = a[1, 0] * x + a[1, 1] * y + a[1, 2]
            if not (u >= -0.5 and u < umax and v >= -0.5 and v < vmax):
                continue
            uf = np.float32(u)
            vf = np.float32(v)
            i0, j0, i1, j1, fx, fy = _taps(h, w, uf, vf)
            alpha = min(bilinear_tap(alpha3, i0, j0, i1, j1, fx, fy, 0), one)
            if not alpha > 0.0:  # out already holds the frame pixel
                continue
            k0, l0, k1, l1, gx, gy = _taps(lh, lw, (uf - c0) / cs, (vf - c0) / cs)
            r0 = bilinear_tap(render, i0, j0, i1, j1, fx, fy, 0)
            r1 = bilinear_tap(render, i0, j0, i1, j1, fx, fy, 1)
            r2 = bilinear_tap(render, i0, j0, i1, j1, fx, fy, 2)
            t0, t1, t2 = _lut(flat, n, scale, r0, r1, r2)
            q0 = t0 * bilinear_tap(low, k0, l0, k1, l1, gx, gy, 0)
            q1 = t1 * bilinear_tap(low, k0, l0, k1, l1, gx, gy, 1)
            q2 = t2 * bilinear_tap(low, k0, l0, k1, l1, gx, gy, 2)
            f0 = bilinear_tap(fan, i0, j0, i1, j1, fx, fy, 0)
            fw = min(max(f0, zero), one)
            if fw > 0.0:
                bilinear_into(frame, bilinear_tap(fan, i0, j0, i1, j1, fx, fy, 1) / f0,
                              bilinear_tap(fan, i0, j0, i1, j1, fx, fy, 2) / f0, sv)
                q0 = fw * sv[0] + (one - fw) * q0
                q1 = fw * sv[1] + (one - fw) * q1
                q2 = fw * sv[2] + (one - fw) * q2
            yu = np.uint64(y)
            xu = np.uint64(x)
            p0 = np.float32(frame[yu, xu, 0])
            p1 = np.float32(frame[yu, xu, 1])
            p2 = np.float32(frame[yu, xu, 2])
            m = alpha
            allow = min(max(bilinear_tap(low, k0, l0, k1, l1, gx, gy, 6), zero), one)
            if allow > 0.0:
                m = alpha * (one - allow * _occluder(
                    p0, p1, p2, bilinear_tap(low, k0, l0, k1, l1, gx, gy, 3),
                    bilinear_tap(low, k0, l0, k1, l1, gx, gy, 4), bilinear_tap(low, k0, l0, k1, l1, gx, gy, 5),
                    dark_lo, dark_hi, chroma_lo, chroma_hi))
            out[yu, xu, 0] = np.uint8(min(max(m * q0 + (one - m) * p0 + np.float32(0.5), zero), np.float32(255.0)))
            out[yu, xu, 1] = np.uint8(min(max(m * q1 + (one - m) * p1 + np.float32(0.5), zero), np.float32(255.0)))
            out[yu, xu, 2] = np.uint8(min(max(m * q2 + (one - m) * p2 + np.float32(0.5), zero), np.float32(255.0)))


def _swap_blend_cpu(frame, render, alpha, fan, low, colour, a, occ, roi, copy, out):
    x0, x1, y0, y1 = roi
    c = np.ascontiguousarray
    f32 = np.float32
    alpha3 = c(alpha).reshape(alpha.shape[0], alpha.shape[1], 1)
    _swap_blend_numba(c(frame), c(render), alpha3, c(fan), c(low), c(colour), a, f32(occ[0]), f32(occ[1]), f32(occ[2]),
                      f32(occ[3]), x0, x1, y0, y1, copy, out)
    return out


register("swap_blend", "numpy", _swap_blend_cpu)
