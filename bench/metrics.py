"""Quality metrics of the seeds (DESIGN §8): pure functions on numpy arrays.

Conventions: images are RGB uint8 (H, W, 3) as everywhere in the engine (float images are
taken to be in [0, 1] where a range matters); landmarks are in pixels, x then y (then z);
angles are in degrees. Nothing here keeps state, except :class:`IdentityEncoder`, which loads
dlib's models once.

One module though over 400 lines: it is the catalogue of the quality pass's metric definitions,
one section each (jitter, flow warping error, PSNR / SSIM, pose, expression, identity), with
nothing shared between sections but the conventions above.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from realtime.face.identity import IdentityEncoder  # the identity distance's encoder (section below)

__all__ = [
    "landmark_jitter_px", "still_segments", "jitter_where_still",
    "flow_warping_error", "FlowWarpingError", "warping_error", "optical_flow", "occlusion_mask",
    "psnr", "ssim",
    "angles_to_matrix", "geodesic_deg", "pose_error_deg",
    "umeyama", "expression_error",
    "IdentityEncoder",
]


# ---------------------------------------------------------------------------------------------
# Landmark jitter
# ---------------------------------------------------------------------------------------------

def _as_landmarks(landmarks) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[-1] < 2:
        raise ValueError(f"landmarks must be (T, N, 2 or 3), got shape {lm.shape}")
    return lm[..., :2]


def still_segments(landmarks, thresh_px: float = 1.5, min_len: int = 10) -> list[tuple[int, int]]:
    """Runs of frames where the face is still.

    speed_t = median over points i of ||p_t,i − p_t−1,i||₂ (px/frame), t = 1..T−1, x/y only.
    Frames t−1 and t belong to the same still run when speed_t < `thresh_px`. Returns
    ``[(start, stop), ...]`` with `stop` exclusive, keeping runs of at least `min_len` frames.
    Frames with NaN landmarks (lost track) break runs.

    Choose `thresh_px` above the noise floor: with per-axis landmark noise σ, the speed of a
    still point is Rayleigh-distributed with median ≈ 1.67·σ, so the default 1.5 px admits
    still faces with σ up to ≈ 0.9 px while a head moving ≥ 1.5 px/frame is "moving".
    """
    lm = _as_landmarks(landmarks)
    T = lm.shape[0]
    if T < 2:
        return []
    with np.errstate(invalid="ignore"):
        speed = np.median(np.linalg.norm(np.diff(lm, axis=0), axis=-1), axis=-1)  # (T-1,)
        still = speed < thresh_px  # NaN -> False
    segs = []
    t = 0
    while t < T - 1:
        if not still[t]:
            t += 1
            continue
        u = t
        while u < T - 1 and still[u]:
            u += 1
        start, stop = t, u + 1  # pairs t..u-1 link frames t..u
        if stop - start >= min_len:
            segs.append((start, stop))
        t = u
    return segs


def landmark_jitter_px(landmarks, segments: Sequence[tuple[int, int]] | None = None,
                       detrend: bool = True) -> float:
    """Landmark jitter in px: the mean over points of the per-axis temporal std.

    jitter = (1/N) Σᵢ sqrt( (var_t(xᵢ) + var_t(yᵢ)) / 2 ),  in px.

    Apply it to still footage, or pass `segments` (e.g. from :func:`still_segments`), in which
    case each point's variance is pooled over the segments. With `detrend` (default) a straight
    line in t is removed per point and segment first (ddof 2), so the slow drift of a "still"
    head is not counted as jitter; without it each segment is taken around its mean (ddof 1):
    var = Σ_seg Σ_t (x − fit_seg(t))² / Σ_seg (len_seg − ddof).
    With i.i.d. Gaussian noise of std σ per axis on a still face, jitter ≈ σ. Only x and y are
    used when z is present. Returns NaN when fewer than two frames are available.
    """
    lm = _as_landmarks(landmarks)
    if segments is None:
        segments = [(0, lm.shape[0])]
    ss = np.zeros(lm.shape[1:], dtype=np.float64)
    dof = 0
    ddof = 2 if detrend else 1
    for a, b in segments:
        seg = lm[a:b]
        n = seg.shape[0]
        if n <= ddof:
            continue
        if detrend:
            t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
            slope = np.tensordot(t, seg - seg.mean(axis=0), axes=(0, 0)) / (t @ t)
            resid = seg - seg.mean(axis=0) - t[:, None, None] * slope[None]
        else:
            resid = seg - seg.mean(axis=0)
        ss += (resid ** 2).sum(axis=0)
        dof += n - ddof
    if dof == 0:
        return float("nan")
    var = ss / dof  # (N, 2)
    return float(np.mean(np.sqrt(var.mean(axis=-1))))


def jitter_where_still(reference, landmarks, thresh_px: float = 1.5,
                       min_len: int = 10) -> tuple[float, int]:
    """(jitter px, frames): :func:`landmark_jitter_px` of `landmarks` over the still segments of
    `reference` (:func:`still_segments`), both (T, N, 2|3) and frame-aligned; (NaN, 0) when the
    reference has no still segment.

    With `reference` the driver and `landmarks` the output, this is the output's jitter where
    the performer holds still, on the same frames whatever the engine draws. Segments chosen on
    the output itself depend on the output: an engine that moves a face more (or jitters more
    than `thresh_px` admits) is measured on fewer, quieter frames.
    """
    segs = still_segments(reference, thresh_px, min_len)
    if not segs:
        return float("nan"), 0
    return landmark_jitter_px(landmarks, segs), int(sum(b - a for a, b in segs))


# ---------------------------------------------------------------------------------------------
# Flow warping error (AP-GAN eq. 14-15)
# ---------------------------------------------------------------------------------------------

def _to_gray_u8(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 3:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    elif a.ndim != 2:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {a.shape}")
    return np.ascontiguousarray(a)


def _to_unit_float(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
    if a.ndim == 2:
        a = a[..., None]
    return a


_DIS = {}


def optical_flow(a, b, method: str = "dis") -> np.ndarray:
    """Dense flow F (H, W, 2) float32, px, such that a(x) ≈ b(x + F(x)).

    method "dis": OpenCV's DIS optical flow (Kroeger et al. 2016, `cv2.DISOpticalFlow`, main
    `video` module, PRESET_MEDIUM) — the default: fast, sub-pixel, maintained.
    method "farneback": `cv2.calcOpticalFlowFarneback` (pyr 0.5, 5 levels, win 15).
    Images are converted to 8-bit grey.
    """
    ga, gb = _to_gray_u8(a), _to_gray_u8(b)
    if ga.shape != gb.shape:
        raise ValueError(f"optical_flow: shapes differ, {ga.shape} vs {gb.shape}")
    if method == "dis":
        dis = _DIS.get("medium")
        if dis is None:
            dis = _DIS["medium"] = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(ga, gb, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 5, 15, 3, 5, 1.2, 0)
    raise ValueError(f"optical_flow: unknown method {method!r} (use 'dis' or 'farneback')")


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def _backward_warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """out(x) = img(x + flow(x)), bilinear; samples outside the image are 0 (and masked)."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    out = cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if out.ndim == 2:
        out = out[..., None]
    return out


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """Visibility mask M (H, W) bool of Ruder, Dosovitskiy & Brox 2016 (AP-GAN's ref. [14]).

    `flow_fw` = F_m→n and `flow_bw` = F_n→m (each in the :func:`optical_flow` convention).
    With w = F_m→n(x) and w̃ = F_n→m(x + w):
      disoccluded  if |w + w̃|² > 0.01 (|w|² + |w̃|²) + 0.5   (forward-backward inconsistency)
      boundary     if |∇u|² + |∇v|² > 0.01 |w|² + 0.002     (motion boundary of w = (u, v))
      outside      if x + w falls outside the image.
    M = 1 where none holds.
    """
    h, w_ = flow_fw.shape[:2]
    gx, gy = _grid(h, w_)
    wt = _backward_warp(np.ascontiguousarray(flow_bw, dtype=np.float32), flow_fw)
    fw = flow_fw.astype(np.float32)
    s = fw + wt
    n_fw = (fw ** 2).sum(-1)
    n_wt = (wt ** 2).sum(-1)
    incons = (s ** 2).sum(-1) > 0.01 * (n_fw + n_wt) + 0.5
    du_y, du_x = np.gradient(fw[..., 0])
    dv_y, dv_x = np.gradient(fw[..., 1])
    boundary = du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2 > 0.01 * n_fw + 0.002
    xs, ys = gx + fw[..., 0], gy + fw[..., 1]
    outside = (xs < 0) | (xs > w_ - 1) | (ys < 0) | (ys > h - 1)
    return ~(incons | boundary | outside)


def warping_error(y_m, y_n, ref_m=None, ref_n=None, mask=None, norm: str = "l1",
                  method: str = "dis") -> float:
    """E_warp(Y_m, Y_n) of AP-GAN eq. 14, images scaled to [0, 1] (uint8 / 255):

        E_warp = Σᵢ Mᵢ |Y_m,i − W(Y_n)_i| / Σᵢ Mᵢ,   i over the H·W·C elements,

    W = backward warp of Y_n onto Y_m with the flow F_m→n of the *reference* pair
    (`ref_m`, `ref_n`: the original sequence, as in the seed; defaults to the outputs
    themselves), M = :func:`occlusion_mask` (broadcast over channels) ∧ `mask` (H, W).
    norm "l1" is the seed's ‖·‖ of a scalar element (absolute difference); "l2sq" uses the
    squared difference (the E_warp of Lai et al. 2018). NaN when no pixel is visible.
    """
    ref_m = y_m if ref_m is None else ref_m
    ref_n = y_n if ref_n is None else ref_n
    f_mn = optical_flow(ref_m, ref_n, method)
    f_nm = optical_flow(ref_n, ref_m, method)
    return _warp_err(_to_unit_float(y_m), _to_unit_float(y_n), f_mn, f_nm, mask, norm)


def _warp_err(ym: np.ndarray, yn: np.ndarray, f_mn, f_nm, mask, norm) -> float:
    if ym.shape != yn.shape or ym.shape[:2] != f_mn.shape[:2]:
        raise ValueError(f"warping_error: shapes differ: {ym.shape}, {yn.shape}, flow {f_mn.shape}")
    m = occlusion_mask(f_mn, f_nm)
    if mask is not None:
        mk = np.asarray(mask, dtype=bool)
        if mk.shape != m.shape:
            raise ValueError(f"warping_error: mask must be (H, W) = {m.shape}, got {mk.shape}")
        m &= mk
    cnt = int(m.sum())
    if cnt == 0:
        return float("nan")
    d = ym - _backward_warp(yn, f_mn)
    if norm == "l1":
        d = np.abs(d)
    elif norm == "l2sq":
        d = d * d
    else:
        raise ValueError(f"warping_error: unknown norm {norm!r} (use 'l1' or 'l2sq')")
    return float(d[m].sum(dtype=np.float64) / (cnt * ym.shape[2]))


def _iter_frames(frames) -> Iterator[np.ndarray]:
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise ValueError(f"frames must be (T, H, W[, C]), got shape {frames.shape}")
        return iter(frames)
    return iter(frames)


class FlowWarpingError:
    """The flow warping error of a sequence fed one frame at a time (`push`); `result()` gives
    what :func:`flow_warping_error` returns for the frames pushed so far. Two frames are held
    (the first and the previous), so a stream of any length costs the same memory.

    `mask` (H, W) bool, or a callable t → (H, W) bool / None, restricts each pair's evaluation
    to frame t's region; the other arguments as in :func:`flow_warping_error`."""

    def __init__(self, mask=None, *, long_term: bool = True, norm: str = "l1", method: str = "dis"):
        self.mask, self.long_term, self.norm, self.method = mask, long_term, norm, method
        self._first = self._prev = None
        self._t = 0
        self._short: list[float] = []
        self._long: list[float] = []

    def push(self, frame: np.ndarray, reference: np.ndarray | None = None) -> None:
        """Add frame t (H, W, 3) uint8; `reference`: the original sequence's frame t, whose
        flow and occlusions are used (None: the frame's own)."""
        t, self._t = self._t, self._t + 1
        r = frame if reference is None else reference
        y = _to_unit_float(frame)
        if self._prev is None:
            self._first = self._prev = (y, r)
            return
        mk = self.mask(t) if callable(self.mask) else self.mask
        prev, first = self._prev, self._first
        e_s = _warp_err(y, prev[0], optical_flow(r, prev[1], self.method),
                        optical_flow(prev[1], r, self.method), mk, self.norm)
        self._short.append(e_s)
        if self.long_term:
            if t == 1:
                self._long.append(e_s)
            else:
                self._long.append(_warp_err(y, first[0], optical_flow(r, first[1], self.method),
                                            optical_flow(first[1], r, self.method), mk, self.norm))
        self._prev = (y, r)

    def result(self) -> dict:
        """{"fwe", "short", "long", "n_pairs"}: the means over the pairs with a visible pixel
        ("long" None without the long-term term; NaN where no pair had one). ValueError before
        two frames."""
        if not self._short:
            raise ValueError("flow_warping_error needs at least two frames")
        s = np.asarray(self._short)
        lg = np.asarray(self._long) if self.long_term else np.zeros_like(s)
        ok = np.isfinite(s) & np.isfinite(lg)
        if not ok.any():
            fwe = s_mean = l_mean = float("nan")
        else:
            s_mean = float(s[ok].mean())
            l_mean = float(lg[ok].mean()) if self.long_term else None
            fwe = float((s[ok] + lg[ok]).mean())
        return {"fwe": fwe, "short": s_mean, "long": l_mean, "n_pairs": int(ok.sum())}


def flow_warping_error(frames: np.ndarray | Iterable[np.ndarray], mask=None, *, reference=None,
                       long_term: bool = True, norm: str = "l1", method: str = "dis",
                       return_terms: bool = False):
    """Flow warping error FWE of a sequence (AP-GAN eq. 15), lower = more stable.

        FWE({Y_t}) = 1/(T−1) Σ_{t=2..T} [ E_warp(Y_t, Y_1) + E_warp(Y_t, Y_t−1) ]

    with E_warp of eq. 14 (:func:`warping_error`, images in [0, 1], mean absolute difference
    over visible pixels and channels). The first term is long-term, the second short-term
    stability; `long_term=False` keeps only the short-term term (then FWE is the mean of
    E_warp(Y_t, Y_t−1)). Flows (DIS, see :func:`optical_flow`) and occlusion masks come
    from `reference` — the original (driver) sequence, as the seed prescribes — when given,
    else from `frames`. `mask` (H, W) or (T, H, W) bool restricts the evaluation (e.g. the
    face region of frame t). Pairs with no visible pixel are skipped.

    `frames` / `reference`: (T, H, W, 3) uint8 array or any iterable of (H, W, 3) frames
    (consumed once, two frames held). Returns a float, or with `return_terms` a dict
    ``{"fwe", "short", "long", "n_pairs"}`` (means of each term).
    """
    mask_arr = None if mask is None else np.asarray(mask, dtype=bool)
    per_frame = mask_arr is not None and mask_arr.ndim == 3
    acc = FlowWarpingError((lambda t: mask_arr[t]) if per_frame else mask_arr,
                           long_term=long_term, norm=norm, method=method)
    rit = _iter_frames(reference) if reference is not None else None
    for y in _iter_frames(frames):
        acc.push(y, next(rit) if rit is not None else None)
    terms = acc.result()
    return terms if return_terms else terms["fwe"]


# ---------------------------------------------------------------------------------------------
# PSNR / SSIM (skimage values; optional face box or mask)
# ---------------------------------------------------------------------------------------------

def _crop(img: np.ndarray, box) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} is empty inside a {w}x{h} image")
    return img[y0:y1, x0:x1]


def _channel_axis(img: np.ndarray, channel_axis):
    if channel_axis != "auto":
        return channel_axis
    return -1 if img.ndim == 3 else None


def psnr(a, b, data_range: float = 255, *, box=None, mask=None) -> float:
    """Peak signal-to-noise ratio in dB: 10·log10(data_range² / MSE), MSE over all pixels
    and channels — `skimage.metrics.peak_signal_noise_ratio`'s value.

    `box` = (x0, y0, x1, y1) px (end exclusive, clipped to the image): the face-region variant,
    computed on the cropped images. `mask` (H, W) bool: MSE over the masked pixels only.
    +inf for identical images.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ, {a.shape} vs {b.shape}")
    if box is not None:
        a, b = _crop(a, box), _crop(b, box)
    if mask is None:
        with np.errstate(divide="ignore"):
            return float(peak_signal_noise_ratio(a, b, data_range=data_range))
    m = np.asarray(mask, dtype=bool)
    if box is not None:
        m = _crop(m, box)
    if m.shape != a.shape[:2]:
        raise ValueError(f"psnr: mask must be (H, W) = {a.shape[:2]}, got {m.shape}")
    d = a.astype(np.float64)[m] - b.astype(np.float64)[m]
    mse = float(np.mean(d * d))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def ssim(a, b, data_range: float = 255, *, box=None, mask=None, channel_axis="auto",
         **kwargs) -> float:
    """Structural similarity, `skimage.metrics.structural_similarity`'s value (defaults:
    7×7 uniform window, K1=0.01, K2=0.03, sample covariance; colour images averaged over
    channels — channel_axis=-1 for (H, W, C) input, "auto"). Extra `kwargs` go to skimage.

    `box` = (x0, y0, x1, y1) px: computed on the cropped images (face-region variant).
    `mask` (H, W) bool: the mean of skimage's full SSIM map over the masked pixels, leaving out
    the (win_size−1)/2 border skimage also leaves out (windows still see unmasked neighbours).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {a.shape} vs {b.shape}")
    if box is not None:
        a, b = _crop(a, box), _crop(b, box)
    ca = _channel_axis(a, channel_axis)
    if mask is None:
        return float(structural_similarity(a, b, data_range=data_range, channel_axis=ca,
                                           **kwargs))
    m = np.asarray(mask, dtype=bool)
    if box is not None:
        m = _crop(m, box)
    if m.shape != a.shape[:2]:
        raise ValueError(f"ssim: mask must be (H, W) = {a.shape[:2]}, got {m.shape}")
    _, smap = structural_similarity(a, b, data_range=data_range, channel_axis=ca, full=True,
                                    **kwargs)
    if smap.ndim == 3:
        smap = smap.mean(axis=-1)
    win = kwargs.get("win_size") or (11 if kwargs.get("gaussian_weights") else 7)
    pad = (win - 1) // 2
    inner = np.zeros_like(m)
    inner[pad:m.shape[0] - pad, pad:m.shape[1] - pad] = True
    sel = m & inner
    if not sel.any():
        return float("nan")
    return float(smap[sel].mean())


# ---------------------------------------------------------------------------------------------
# Pose error
# ---------------------------------------------------------------------------------------------

def angles_to_matrix(angles_deg, order: str = "YXZ") -> np.ndarray:
    """(…, 3) Euler angles (yaw, pitch, roll) in degrees → (…, 3, 3) rotation matrices.

    Default order "YXZ" (intrinsic, scipy convention): R = R_y(yaw) · R_x(pitch) · R_z(roll)
    in camera axes (x right, y down, z forward).
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    flat = a.reshape(-1, 3)
    R = Rotation.from_euler(order, flat, degrees=True).as_matrix()
    return R.reshape(a.shape[:-1] + (3, 3))


def _as_rotations(x, order: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape[-2:] == (3, 3):
        return a.reshape(-1, 3, 3)
    if a.shape[-1] == 3:
        return angles_to_matrix(a, order).reshape(-1, 3, 3)
    raise ValueError(f"rotations must be (T, 3, 3) matrices or (T, 3) angles, got {a.shape}")


def geodesic_deg(R_a, R_b, order: str = "YXZ") -> np.ndarray:
    """Per-frame geodesic angle (deg) between rotations: θ = angle of R_aᵀ R_b,
    θ = atan2(‖vee(Q − Qᵀ)‖ / 2, (tr Q − 1) / 2) with Q = R_aᵀ R_b (stable near 0 and 180°)."""
    A, B = _as_rotations(R_a, order), _as_rotations(R_b, order)
    if A.shape != B.shape:
        raise ValueError(f"pose_error: {A.shape[0]} vs {B.shape[0]} rotations")
    Q = np.einsum("tji,tjk->tik", A, B)
    cos = (np.trace(Q, axis1=1, axis2=2) - 1.0) / 2.0
    v = np.stack([Q[:, 2, 1] - Q[:, 1, 2], Q[:, 0, 2] - Q[:, 2, 0], Q[:, 1, 0] - Q[:, 0, 1]], -1)
    sin = np.linalg.norm(v, axis=-1) / 2.0
    return np.degrees(np.arctan2(sin, cos))


def pose_error_deg(R_a, R_b, order: str = "YXZ") -> float:
    """Mean geodesic angle in degrees between two pose sequences.

    Inputs: (T, 3, 3) / (3, 3) rotation matrices, or (T, 3) / (3,) Euler angles in degrees
    (yaw, pitch, roll, see :func:`angles_to_matrix`). error = mean_t θ_t (:func:`geodesic_deg`).
    """
    return float(np.mean(geodesic_deg(R_a, R_b, order)))


# ---------------------------------------------------------------------------------------------
# Expression error
# ---------------------------------------------------------------------------------------------

def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991): s, R, t minimising Σ‖s R srcᵢ + t − dstᵢ‖²,
    R a proper rotation (det +1). src, dst: (N, D)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    cov = xd.T @ xs / len(src)
    U, S, Vt = np.linalg.svd(cov)
    d = np.ones(len(S))
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        d[-1] = -1
    R = U @ np.diag(d) @ Vt
    s = float((S * d).sum() / var_s) if var_s > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def expression_error(lm_out, lm_ref, interocular_idx: tuple[int, int] = (33, 263),
                     per_frame: bool = False):
    """Normalised landmark distance (dimensionless, fraction of the interocular distance).

    For each frame: align the output landmarks onto the reference with the least-squares
    similarity (:func:`umeyama`: rotation, uniform scale, translation), then
        e_t = mean_i ‖s R out_i + t − ref_i‖₂ / ‖ref_a − ref_b‖₂,
    (a, b) = `interocular_idx` (MediaPipe outer eye corners 33 and 263 by default).
    Returns mean_t e_t (or the (T,) array with `per_frame`). Shapes (T, N, D) or (N, D),
    D = 2 or 3 (both arrays must have the same D; pass [..., :2] to compare in the image plane).
    """
    out = np.asarray(lm_out, dtype=np.float64)
    ref = np.asarray(lm_ref, dtype=np.float64)
    if out.ndim == 2:
        out, ref = out[None], ref[None] if ref.ndim == 2 else ref
    if out.shape != ref.shape or out.ndim != 3:
        raise ValueError(f"expression_error: shapes differ or not (T, N, D): {out.shape} vs {ref.shape}")
    a, b = interocular_idx
    errs = np.empty(out.shape[0])
    for t in range(out.shape[0]):
        s, R, tr = umeyama(out[t], ref[t])
        aligned = s * out[t] @ R.T + tr
        iod = np.linalg.norm(ref[t, a] - ref[t, b])
        errs[t] = np.linalg.norm(aligned - ref[t], axis=-1).mean() / iod if iod > 0 else np.nan
    return errs if per_frame else float(np.nanmean(errs))


# Identity distance (dlib ResNet face descriptor): `IdentityEncoder`, imported above from
# realtime.face.identity, where video enrollment also uses it (profiles.persons).
