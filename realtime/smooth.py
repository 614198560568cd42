"""Smooth stage: motion-compensated temporal smoothing of the face crop (DESIGN §6).

    Y'_t = (1 − a)·Y_t + a·warp(Y'_{t−1}, F_{t→t−1}),   a = a0 · visible · exp(−(r / r0)²)

F and `visible` come from `flow3d` on the avatar mesh of t and t−1 (UniFaceGAN eq. 11–16), so
the previous output is carried along with the motion (no ghosting, no lag); r is the per-pixel
difference between the warped previous output and the new one, so a real change (an opening
mouth, a blink) passes through at once and only frame-to-frame shimmer is averaged away.
The state resets on a lost track or a jump of the head.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels import flow3d, warp
from realtime.frame import Frame


@njit(cache=True, nogil=True, fastmath=True)
def _blend(render, warped, visible, strength, inv_scale, out):
    """One pass of the smoothing rule over an (H, W, 3) crop (see the module docstring)."""
    h, w, c = render.shape
    for y in range(h):
        for x in range(w):
            if not visible[y, x]:
                for k in range(c):
                    out[y, x, k] = render[y, x, k]
                continue
            d = 0.0
            for k in range(c):
                d += abs(warped[y, x, k] - render[y, x, k])
            r = d / c * inv_scale
            a = strength * np.exp(-r * r)
            for k in range(c):
                out[y, x, k] = render[y, x, k] + a * (warped[y, x, k] - render[y, x, k])


class SmoothStage:
    name = "smooth"

    def __init__(self, rig, strength: float = 0.6, residual_scale: float = 10.0,
                 max_step_px: float = 12.0, enabled: bool = True):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smooth strength must be in [0, 1), got {strength}")
        self.rig = rig
        self.strength = strength
        self.residual_scale = residual_scale
        self.max_step_px = max_step_px  # a larger mean vertex step is a cut: start afresh
        self.enabled = enabled
        s = rig.crop_size
        self._flow = (np.empty((s, s, 2), np.float32), np.empty((s, s), np.bool_))
        self._warped = np.empty((s, s, 3), np.float32)
        self.reset()

    def reset(self) -> None:
        self._prev_out = None
        self._prev_vertices = None
        self._prev_depth = None

    def __call__(self, frame: Frame) -> None:
        if not self.enabled:
            return
        present = frame.state is None or getattr(frame.state, "present", True)
        verts = frame.vertices
        if (self._prev_out is None or not present or
                np.abs(verts[:, :2] - self._prev_vertices[:, :2]).mean() > self.max_step_px):
            self._remember(frame, frame.render)
            return
        flow, visible = flow3d(frame.gbuf, self.rig.triangles, verts, self._prev_vertices,
                               self._prev_depth, out=self._flow)
        warped = warp(self._prev_out, flow, out=self._warped)
        out = np.empty_like(frame.render)
        _blend(frame.render, warped, visible, self.strength, 1.0 / self.residual_scale, out)
        frame.render = out
        self._remember(frame, out)

    def _remember(self, frame: Frame, out: np.ndarray) -> None:
        self._prev_out = out
        self._prev_vertices = frame.vertices.copy()
        self._prev_depth = frame.gbuf.depth.copy()
