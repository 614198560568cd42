"""The head turn an expression residual carries, and how to take it out.

The estimator splits a tracked face into a rigid pose and an expression residual (canonical
units). MediaPipe's depth is shallower than a real face's, so a turn of the head is fitted only
in part by the rigid pose: the rest stays in the residual as a sideways shift of the points in
front of the rigid ones (the nose, the chin) and a depth twist of the outline — the pattern by
which a turn reads. With the pose and the expression from one face that does no harm (it adds
the missing part of the turn back), but when the pose comes from elsewhere (remix, `--pose-from
still`) it turns a held head with the driver's: on d10 → s1 the bench read 0.76° of yaw std on
the output (`quality_info.output_pose_std`) while the engine's mesh moved 0.04°.

A turn (yaw) moves a face's mirror pairs the same way sideways and twists them in depth; an
expression moves them mirror-symmetrically (both mouth corners out, both brows up). So the
turn-like part of a residual is its mirror-antisymmetric lateral part: per mirror pair (i, j),
the common x shift (e_ix + e_jx) / 2 and the depth twist (e_iz − e_jz) / 2 (midline points:
their x). `untwisted` removes it from the mesh points but the eyes': their lids and irises are
left as they are (MediaPipe's lid contours shift with the gaze; on d10 → s1 with `--pose-from
still`, with the calibration of the time, untwisting them too and moving each iris with its
eye took the gaze-x gain from 0.83 to 0.78 for 0.01° less yaw std; leaving them, 0.87).
Vertical motion is never touched (the mouth opening, the brows, the lids), so a roll left in a
residual keeps its vertical part and a nod all of it. An asymmetric expression keeps its
vertical asymmetry and half of its sideways one, spread over both sides (a smile's corner that
moved out and up becomes both corners half as far out, the one still up).
"""
from __future__ import annotations

import numpy as np

from realtime.face import topology

__all__ = ["untwisted"]

# 1 where the turn-like part is taken out: every point but the eyes' (lids and irises)
_WEIGHT = np.ones(topology.N_LANDMARKS)
_WEIGHT[list(topology.EYE_POINTS)] = 0.0
_WEIGHT.setflags(write=False)


def untwisted(expression: np.ndarray) -> np.ndarray:
    """(478, 3) expression residual (canonical: x from the subject's right to left, z depth)
    without its turn-like part (see the module docstring); a new array of the input's dtype
    (the input is not modified). A mirror-symmetric residual is returned unchanged."""
    e = np.asarray(expression)
    if e.shape != (topology.N_LANDMARKS, 3):
        raise ValueError(f"untwisted: expression must be ({topology.N_LANDMARKS}, 3), got {e.shape}")
    x = e.astype(np.float64)
    m = x[topology.MIRROR]
    shift = 0.5 * (x[:, 0] + m[:, 0])
    twist = 0.5 * (x[:, 2] - m[:, 2])
    out = x.copy()
    out[:, 0] -= _WEIGHT * shift
    out[:, 2] -= _WEIGHT * twist
    return out.astype(e.dtype, copy=False)
