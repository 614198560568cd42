"""One-Euro filter (Casiry et al. 2012; FSGAN §3.1 uses it on landmarks), vectorised.

Smooths small motions hard (low cutoff when the signal is slow) and follows large motions
fast (the cutoff rises with the filtered speed): jitter goes, lag stays small.
"""
from __future__ import annotations

import numpy as np


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array signal of fixed shape, element by element.

    min_cutoff (Hz): cutoff at rest; lower = smoother still signal. A scalar, or an array that
        broadcasts against the signal.
    beta: how fast the cutoff rises with speed (per unit of the signal per second); a scalar,
        or an array that broadcasts against the signal (a different beta per element).
    d_cutoff (Hz): cutoff of the speed estimate.
    """

    def __init__(self, min_cutoff=1.0, beta=0.0, d_cutoff: float = 1.0):
        if np.any(np.asarray(min_cutoff) <= 0) or d_cutoff <= 0 or np.any(np.asarray(beta) < 0):
            raise ValueError(f"OneEuroFilter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; "
                             f"got {min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes through unfiltered."""
        self._x = None
        self._dx = None
        self._t = None

    def __call__(self, x, t: float, floor=None):
        """Filter sample `x` taken at time `t` (seconds, increasing). `floor` (Hz, optional,
        broadcasts against `x`): a lower bound on the cutoff, e.g. from the speed of a
        feature the element moves with (`Speed`)."""
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(f"OneEuroFilter got shape {x.shape}, was filtering {self._x.shape}")
        dt = t - self._t
        if dt <= 0:
            dt = 1e-3
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        if floor is not None:
            cutoff = np.maximum(cutoff, floor)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class Speed:
    """Speed of a vector signal: the norm of its derivative, low-passed at `d_cutoff` (Hz).

    A few features that average many noisy points (a lip gap, a brow height) move coherently
    when the face does and barely at all from tracking noise: their speed tells a One-Euro
    filter (`floor`) when a whole region is moving, better than each point's own speed.

    `rectified`: low-pass each element's speed magnitude instead of its signed derivative, so
    a motion that turns back (a blink's lids: down, then up a frame later) keeps reading as
    motion through the turn instead of cancelling to ~0 in the low-pass.
    """

    def __init__(self, d_cutoff: float = 2.0, rectified: bool = False):
        if d_cutoff <= 0:
            raise ValueError(f"Speed needs d_cutoff > 0, got {d_cutoff}")
        self.d_cutoff = d_cutoff
        self.rectified = rectified
        self.reset()

    def reset(self) -> None:
        self._x = None
        self._dx = None
        self._t = None

    def __call__(self, x, t: float) -> float:
        """Speed (signal units per second) after sample `x` at time `t`; 0 on the first."""
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return 0.0
        dt = t - self._t
        if dt <= 0:
            dt = 1e-3
        dx = (x - self._x) / dt
        if self.rectified:
            dx = np.abs(dx)
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        self._x, self._t = x.copy(), t
        return float(np.linalg.norm(self._dx))
