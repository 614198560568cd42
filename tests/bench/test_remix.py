"""bench.remix: the fidelity reference of a remixed engine, and the head's rigid rotation spread."""
from __future__ import annotations

import numpy as np
import pytest

from bench import fidelity
from bench.remix import EXPRESSION_SIGNALS, reference_signals, rigid_pose_std
from realtime.face import geometry
from realtime.face.state import FaceState
from realtime.io.remix import RemixStage, StillState


def test_rigid_pose_std_sees_the_head_not_the_expression(astronaut_landmarks):
    lm = np.asarray(astronaut_landmarks, np.float64)
    c = lm.mean(0)
    frames = []
    for i, yaw in enumerate([0.0, 2.0, -2.0, 1.0, -1.0, 0.0]):
        r = geometry.rotation_from_euler(yaw, 0.0, 0.0)
        f = (lm - c) @ r.T + c
        f[[13, 14, 82, 87], 1] += 5.0 * i                 # the mouth moves too: not a head turn
        frames.append(f)
    frames.append(np.full_like(lm, np.nan))               # a lost frame is skipped
    s = rigid_pose_std(np.stack(frames))
    assert s["yaw"] == pytest.approx(np.std([0, 2, -2, 1, -1, 0]), abs=0.05)
    assert s["pitch"] < 0.05 and s["roll"] < 0.05
    assert rigid_pose_std(np.stack(frames[:2])) is None


def test_reference_signals_take_the_remix_sources(astronaut_profile, astronaut_landmarks):
    drv = fidelity.face_signals(astronaut_landmarks)

    class Engine:
        remix = None

    assert reference_signals(Engine(), drv) is drv
    e = Engine()
    e.remix = RemixStage(pose=StillState(), expression=StillState())
    e.recombiner = type("R", (), {"target_neutral": np.asarray(astronaut_profile["neutral"], np.float64)})()
    e.remix.last = {"pose": FaceState.neutral(), "expression": FaceState.neutral()}
    out = reference_signals(e, drv)
    assert out[fidelity.SIGNALS.index("yaw")] == 0.0 and out[fidelity.SIGNALS.index("pitch")] == 0.0
    neutral_sig = fidelity.face_signals(np.asarray(astronaut_profile["neutral"], np.float64))
    for name in EXPRESSION_SIGNALS:
        k = fidelity.SIGNALS.index(name)
        assert out[k] == pytest.approx(neutral_sig[k])
