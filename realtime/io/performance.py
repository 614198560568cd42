"""Scripted performances: a driver made of face-state curves instead of a camera.

`Blendshapes` builds a few expression displacement fields on any neutral shape (canonical
units, y down): jaw open, smile, blinks, brow raise, pucker. `default_performance` is the demo's
script — turn, nod, smile, open wide, blink, raise brows, talk — and `ScriptedSource` plays a
performance as a capture source (it yields {"state": FaceState}), so the loop runs unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.core.ramp import smoothstep
from realtime.face import geometry, topology
from realtime.face.state import FaceState

_LOWER_LIP_OUTER = list(topology.OUTER_LIP[11:])   # 375 ... 146: the outer lower lip, corners excluded


class Blendshapes:
    """Expression fields (478, 3) on one neutral shape; `__call__(weights)` sums them."""

    NAMES = ("jaw_open", "smile", "blink_right", "blink_left", "brow_raise", "pucker")

    def __init__(self, neutral: np.ndarray):
        n = np.asarray(neutral, np.float64)
        self.neutral = n
        self.fields = {name: getattr(self, "_" + name)(n) for name in self.NAMES}

    def __call__(self, weights: dict[str, float]) -> np.ndarray:
        out = np.zeros_like(self.neutral)
        for name, w in weights.items():
            if w:
                out += w * self.fields[name]
        return out

    @staticmethod
    def _jaw_open(n):
        corners = n[[61, 291]]
        y0 = corners[:, 1].mean()
        half_w = 0.5 * abs(n[454, 0] - n[234, 0])
        xm = n[topology.CHIN, 0]
        # The jaw drops as one piece from the outer lower lip down (the lower lip, inner and
        # outer contours alike, moves with it: a lower lip whose inner contour dropped further
        # than its outer one would fold over itself); the cheeks between the mouth's corners and
        # the lip's lowest point follow part way, and the jaw's sides less than its middle.
        lip_bottom = n[_LOWER_LIP_OUTER, 1].max()
        w = np.clip((n[:, 1] - y0) / max(lip_bottom - y0, 1e-9), 0, 1) ** 0.8
        w *= np.clip(1 - ((n[:, 0] - xm) / half_w) ** 2, 0, 1) ** 0.5
        w[list(topology.INNER_LIP_LOWER[1:-1]) + _LOWER_LIP_OUTER] = 1.0
        w[list(topology.INNER_LIP_UPPER)] = 0.0
        w[[78, 308, 61, 291]] = 0.5
        d = np.zeros_like(n)
        d[:, 1] = 0.5 * w
        d[:, 2] = 0.12 * w
        return d

    @staticmethod
    def _smile(n):
        d = np.zeros_like(n)
        centre_x = n[[61, 291], 0].mean()
        for corner in (61, 291, 78, 308):
            side = np.sign(n[corner, 0] - centre_x)
            dist = np.linalg.norm(n[:, :2] - n[corner, :2], axis=1)
            g = np.exp(-(dist / 0.28) ** 2) * 0.5
            d[:, 0] += side * 0.09 * g
            d[:, 1] -= 0.07 * g
        cheek = np.exp(-(np.linalg.norm(n[:, :2] - n[[50, 280]].mean(0)[:2], axis=1) / 0.5) ** 2)
        d[:, 1] -= 0.015 * cheek
        return d

    @staticmethod
    def _blink(n, upper_ids, lower_ids):
        d = np.zeros_like(n)
        upper = np.array(upper_ids[1:-1])
        lower = np.array(lower_ids[1:-1])
        gap = n[lower] - n[upper]
        d[upper] = 0.85 * gap
        d[lower] = -0.15 * gap
        centre = n[list(upper_ids) + list(lower_ids)].mean(0)
        dist = np.linalg.norm(n[:, :2] - centre[:2], axis=1)
        above = (n[:, 1] < centre[1]) & ~np.isin(np.arange(len(n)), upper_ids)
        d[above, 1] += 0.25 * gap[:, 1].mean() * np.exp(-(dist[above] / 0.18) ** 2)
        return d

    def _blink_right(self, n):
        return self._blink(n, topology.RIGHT_EYE_UPPER, topology.RIGHT_EYE_LOWER)

    def _blink_left(self, n):
        return self._blink(n, topology.LEFT_EYE_UPPER, topology.LEFT_EYE_LOWER)

    @staticmethod
    def _brow_raise(n):
        d = np.zeros_like(n)
        brows = list(topology.RIGHT_BROW) + list(topology.LEFT_BROW)
        for b in brows:
            dist = np.linalg.norm(n[:, :2] - n[b, :2], axis=1)
            d[:, 1] -= 0.02 * np.exp(-(dist / 0.2) ** 2)
        d[brows, 1] = np.minimum(d[brows, 1], -0.12)
        eyes = list(topology.RIGHT_EYE_UPPER + topology.RIGHT_EYE_LOWER + topology.LEFT_EYE_UPPER
                    + topology.LEFT_EYE_LOWER + topology.RIGHT_IRIS + topology.LEFT_IRIS)
        d[eyes] = 0.0
        return d

    @staticmethod
    def _pucker(n):
        d = np.zeros_like(n)
        mouth = n[list(topology.OUTER_LIP)].mean(0)
        dist = np.linalg.norm(n[:, :2] - mouth[:2], axis=1)
        g = np.exp(-(dist / 0.3) ** 2)
        d[:, 0] = -(n[:, 0] - mouth[0]) * 0.35 * g
        d[:, 2] = -0.06 * g
        return d


@dataclass
class Keys:
    """One instant of a performance: the head's angles (degrees) and sideways shift (face
    units), the expression's blendshape weights (`Blendshapes.NAMES`), and what the open mouth
    shows, as a tracked driver's mouth gauges it (`FaceState.teeth`, `FaceState.tongue`)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    shift_x: float = 0.0
    weights: dict | None = None
    teeth: float = 0.0
    tongue: float = 0.0


#: The tongue share the demo's wide-open mouth shows at its widest: a real jaw dropped that far
#: shows the tongue lying behind the lower teeth (d10's open mouths gauge 0.43). At 0 the
#: avatar's wide-open mouth was a black void over her lower teeth.
OPEN_WIDE_TONGUE = 0.45


def default_performance(t: float) -> Keys:
    """The demo script over 10 s: turn, nod, smile, open wide, blink, raise brows, talk."""
    w = {name: 0.0 for name in Blendshapes.NAMES}
    k = Keys(weights=w)
    bump = lambda a, b: float(np.sin(np.pi * np.clip((t - a) / (b - a), 0, 1)) ** 2)
    k.yaw = 24.0 * np.sin(2 * np.pi * (t - 0.8) / 2.2) if 0.8 <= t < 3.0 else 0.0
    k.pitch = 14.0 * np.sin(2 * np.pi * (t - 3.0) / 1.1) if 3.0 <= t < 4.1 else 0.0
    k.roll = 6.0 * np.sin(2 * np.pi * (t - 1.9) / 2.2) if 1.9 <= t < 3.0 else 0.0
    w["smile"] = bump(4.0, 5.4)
    w["jaw_open"] = bump(5.2, 6.4)
    k.tongue = OPEN_WIDE_TONGUE * w["jaw_open"]
    w["blink_right"] = w["blink_left"] = max(bump(6.4, 6.65), bump(6.8, 7.05))
    w["brow_raise"] = bump(7.0, 8.0)
    if t >= 7.9:  # talking: syllables at ~4 Hz, the odd rounded vowel, a little head motion
        s = t - 7.9
        syl = 0.5 + 0.5 * np.sin(2 * np.pi * 4.3 * s) * np.sin(2 * np.pi * 0.9 * s + 0.5)
        w["jaw_open"] = 0.45 * syl * smoothstep(s / 0.2)
        w["pucker"] = 0.6 * max(0.0, np.sin(2 * np.pi * 1.3 * s)) ** 4
        w["smile"] = 0.25 * smoothstep(s / 0.5)
        k.yaw = 6.0 * np.sin(2 * np.pi * 0.5 * s)
        k.pitch = 3.0 * np.sin(2 * np.pi * 1.1 * s)
    return k


class ScriptedSource:
    """A capture source that plays a performance: read() → {"state": FaceState}.

    `neutral` is the avatar's canonical neutral shape (the expressions are built on it, so no
    retargeting is needed). The script runs over `duration_s` seconds and is stretched to fill
    `frames` frames at `fps`.
    """

    is_live = False
    tracked = True      # its frames carry their FaceState: the loop never loads the tracker

    def __init__(self, neutral: np.ndarray, frames: int = 300, fps: float = 30.0,
                 script=default_performance, duration_s: float = 10.0):
        if frames < 1:
            raise ValueError(f"a performance needs at least 1 frame, got {frames}")
        self.fps = float(fps)
        self.frame_count = int(frames)
        self.size = None
        self.shapes = Blendshapes(neutral)
        self.script = script
        self.duration_s = duration_s
        self._i = 0

    def state_at(self, t: float) -> FaceState:
        k = self.script(t)
        return FaceState(rotation=geometry.rotation_from_euler(k.yaw, k.pitch, k.roll),
                         translation=np.array([k.shift_x, 0.0, 0.0]),
                         expression=self.shapes(k.weights or {}), teeth=k.teeth, tongue=k.tongue)

    def read(self) -> dict | None:
        if self._i >= self.frame_count:
            return None
        t = self._i / max(self.frame_count - 1, 1) * self.duration_s
        self._i += 1
        return {"state": self.state_at(t)}

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ScriptedSource({self.frame_count} frames at {self.fps:g} fps)"
