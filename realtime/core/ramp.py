"""`smoothstep`: the ramp of the engine's fades and eases (one definition: the estimator, the
mouth cavity, the warp tier and the scripted performance each had their own)."""
from __future__ import annotations

__all__ = ["smoothstep"]


def smoothstep(x):
    """0 at x ≤ 0, 1 at x ≥ 1 and 3x² − 2x³ between (zero slope at both ends), of a Python or
    NumPy number, or elementwise of an array of any array module (numpy, cupy; its dtype kept)."""
    if isinstance(x, (int, float)):
        x = min(max(float(x), 0.0), 1.0)
    else:
        x = x.clip(0, 1)
    return x * x * (3 - 2 * x)
