"""Keyframe weights over time: at most k keyframes at once (`sparsify`) and a rate-limited
cross-fade (`WeightSmoother`), so a change of simplex or region keyframe never pops."""
from __future__ import annotations

import numpy as np

MAX_FACE_KEYS = 3        # keyframes blended for the face at rest
MAX_SAMPLED_KEYS = 6     # ... and at most during a cross-fade (old and new sets together)
FADE_FRAMES = 3.0        # a complete switch of keyframes is cross-faded over this many frames
DROP_WEIGHT = 0.02       # smoothed weights below this are dropped (the rest renormalised)


def sparsify(w: np.ndarray, k: int = MAX_FACE_KEYS, tau_max: float = 0.1) -> np.ndarray:
    """At most k non-zero weights, renormalised: subtract τ = min((k+1)-th largest, `tau_max`)
    from every weight, clip at 0, keep the k largest.

    Continuous where the k-th and (k+1)-th swap rank while they are below `tau_max` (both are
    0 there), and where the (k+1)-th crosses `tau_max`; the renormalisation never divides by
    less than 1 − (k+1)·tau_max, so near-ties cannot blow small changes up (the plain soft
    threshold, τ = (k+1)-th, divides by ~0 when k+1 weights tie). What remains — a rank swap
    between two weights both above `tau_max` — moves at most 2·(w − tau_max) and the cross-fade
    absorbs it."""
    w = np.asarray(w, np.float64)
    if np.count_nonzero(w) <= k:
        return w / w.sum()
    order = np.argsort(-w, kind="stable")
    tau = min(w[order[k]], tau_max)
    out = np.clip(w - tau, 0.0, None)
    out[order[k:]] = 0.0
    total = out.sum()
    if total <= 1e-12:
        out = np.zeros_like(w)
        out[order[:k]] = 1.0
        total = float(k)
    return out / total


class WeightSmoother:
    """Cross-fades a keyframe weight vector in time: each frame the weights move straight
    towards the target by at most 2 / `fade_frames` in L1 norm (a full switch from one set of
    keyframes to another takes `fade_frames` frames, ~100 ms at 30 fps; ordinary motion, which
    changes the weights by less, passes without lag). Weights below `drop` are dropped and at
    most `cap` keep weight (the smallest go first); the result always sums to one."""

    def __init__(self, n: int, fade_frames: float | None = None, drop: float = DROP_WEIGHT,
                 cap: int | None = None):
        self.n, self.drop = n, drop
        self.fade_frames = FADE_FRAMES if fade_frames is None else fade_frames
        self.cap = MAX_SAMPLED_KEYS if cap is None else cap
        self.w: np.ndarray | None = None

    def reset(self) -> None:
        self.w = None

    def __call__(self, target: np.ndarray, steps: float = 1.0) -> np.ndarray:
        target = np.asarray(target, np.float64)
        if self.w is None or self.fade_frames <= 0:
            w = target.copy()
        else:
            delta = target - self.w
            dist = np.abs(delta).sum()
            limit = 2.0 * max(steps, 1.0) / self.fade_frames
            w = self.w + delta * min(1.0, limit / dist) if dist > 0 else target.copy()
        w[w < self.drop] = 0.0
        if np.count_nonzero(w) > self.cap:
            w[np.argsort(-w, kind="stable")[self.cap:]] = 0.0
        total = w.sum()
        w = target.copy() if total <= 0 else w / total
        self.w = w
        return w
