"""What the output should follow when the engine remixes its face state (`--pose-from`,
`--expression-from`, `realtime.io.remix`): the fidelity reference of a quality pass.

Without remix the output follows the main driver, whose tracked landmarks give the reference
signals (`bench.fidelity.face_signals`). With remix, the expression signals (mouth, eyes, brows,
gaze) come from the expression source's state as the engine used it — its neutral shape plus
its expression residual, a frontal face — and the pose signals (yaw, pitch) from the pose
source's rotation; the rest stays the main driver's.
"""
from __future__ import annotations

import numpy as np

from bench import fidelity
from realtime.face import geometry, topology

__all__ = ["remixed", "reference_signals", "rigid_pose_std", "EXPRESSION_SIGNALS", "POSE_SIGNALS"]

POSE_SIGNALS = ("yaw", "pitch")
EXPRESSION_SIGNALS = tuple(s for s in fidelity.SIGNALS if s not in POSE_SIGNALS)
_EXPR = [fidelity.SIGNALS.index(s) for s in EXPRESSION_SIGNALS]
_POSE = [fidelity.SIGNALS.index(s) for s in POSE_SIGNALS]


def remixed(engine) -> dict:
    """The remix sources' states of the engine's last frame ({"pose", "expression"}: a state or
    None each); {} where the engine does not remix."""
    return getattr(getattr(engine, "remix", None), "last", None) or {}


def reference_signals(engine, driver_signals: np.ndarray) -> np.ndarray:
    """`driver_signals` (the main driver's, `fidelity.SIGNALS` order) with the parts a remix
    source gives replaced by that source's signals on the engine's last frame."""
    last = remixed(engine)
    if not last:
        return driver_signals
    remix = engine.remix
    out = np.array(driver_signals, np.float64, copy=True)
    expr = last.get("expression")
    if expr is not None:
        neutral = remix.expression.neutral
        if neutral is None:                      # `still`: a neutral face; any shape will do
            neutral = engine.recombiner.target_neutral
        shape = np.asarray(neutral, np.float64) + np.asarray(expr.expression, np.float64)
        out[_EXPR] = fidelity.face_signals(shape)[_EXPR]
    pose = last.get("pose")
    if pose is not None:
        yaw, pitch, _ = geometry.euler_from_rotation(pose.rotation)
        out[_POSE] = (yaw, pitch)
    return out


def rigid_pose_std(landmarks: np.ndarray) -> dict[str, float] | None:
    """{"yaw", "pitch", "roll"}: standard deviation (degrees) of the head's rotation measured on
    the skull's rigid points only (`topology.RIGID`: forehead, nose bridge, eye corners,
    temples), each frame's fitted to their median shape — the head's own motion, which the
    face-frame angles of `fidelity.face_signals` mix with the expression (an asymmetric brow or
    smile turns the whole face frame a little). `landmarks` (N, 478, 3) with NaN rows where the
    face was not tracked; None with fewer than 3 tracked frames."""
    lm = np.asarray(landmarks, np.float64)
    ok = np.isfinite(lm).all(axis=(1, 2))
    if ok.sum() < 3:
        return None
    rigid = lm[ok][:, list(topology.RIGID)]
    ref = np.median(rigid, axis=0)
    angles = np.array([geometry.euler_from_rotation(geometry.umeyama(ref, r).rotation) for r in rigid])
    return {k: float(v) for k, v in zip(("yaw", "pitch", "roll"), angles.std(axis=0))}
