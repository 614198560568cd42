"""Smooth stage: motion-compensated temporal smoothing of the face crop (DESIGN §6).

    Y'_t = (1 − a)·Y_t + a·warp(Y'_{t−1}, F_{t→t−1}),   a = a0 · visible · exp(−(r / r0)²)

F and `visible` come from `flow3d` on the avatar mesh of t and t−1 (UniFaceGAN eq. 11–16), so
the previous output is carried along with the motion (no ghosting, no lag); r is the per-pixel
difference between the warped previous output and the new one, so a real change (an opening
mouth, a blink) passes through at once and only frame-to-frame shimmer is averaged away.
The state resets on a lost track or a jump of the head.

Runs where the engine's device context puts the crop: `kernels.flow3d` and `kernels.warp`
dispatch to their numba or CUDA twins; the blend is a numba loop on the CPU and array
operations on CUDA (`blend_array`, in cupy); the two agree to float32 rounding
(tests/realtime/test_smooth.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels import flow3d, warp
from kernels._dispatch import array_module, array_module_name
from realtime.frame import Frame


@njit(cache=True, nogil=True, fastmath=True)
def _blend_numba(render, warped, visible, strength, inv_scale, out):
    """The smoothing rule over an (H, W, 3) crop, given the warped previous output."""
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


def _blend_cpu(render, warped, visible, strength: float, inv_scale: float, out):
    _blend_numba(render, warped, visible, strength, inv_scale, out)
    return out


def blend_array(render, warped, visible, strength: float, inv_scale: float, out):
    """The smoothing rule as array operations of the arrays' own module (numpy or cupy): the
    CUDA path, and the reference the CPU pass is tested against."""
    xp = array_module(render)
    diff = warped - render
    r = xp.abs(diff).mean(axis=2) * np.float32(inv_scale)
    a = (np.float32(strength) * xp.exp(-r * r) * visible)[..., None]
    out[...] = render + a * diff
    return out


_BLEND = {"numpy": _blend_cpu, "cupy": blend_array}


class SmoothStage:
    """The smoother on the engine's device context `ctx` (default: the CPU).

    strength a0 in [0, 1); residual_scale r0 in colour levels (0..255); a mean vertex step
    above max_step_px between frames is a cut (the state starts afresh)."""

    name = "smooth"
    device_ready = True

    def __init__(self, rig, strength: float = 0.6, residual_scale: float = 10.0,
                 max_step_px: float = 12.0, enabled: bool = True, ctx=None):
        from realtime.device import CpuContext

        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smooth strength must be in [0, 1), got {strength}")
        self.ctx = ctx if ctx is not None else CpuContext()
        xp = self.ctx.xp
        self.rig = rig
        self.triangles = self.ctx.upload(rig.triangles)
        self.strength = strength
        self.residual_scale = residual_scale
        self.max_step_px = max_step_px
        self.enabled = enabled
        s = rig.crop_size
        self._flow = (xp.empty((s, s, 2), np.float32), xp.empty((s, s), np.bool_))
        self._warped = xp.empty((s, s, 3), np.float32)
        self.reset()

    def reset(self) -> None:
        self._prev_out = None
        self._prev_vertices = None      # host copy (the cut test)
        self._prev_vertices_dev = None  # the context's copy (flow3d)
        self._prev_depth = None

    def __call__(self, frame: Frame) -> None:
        if not self.enabled:
            return
        present = frame.state is None or getattr(frame.state, "present", True)
        frame.render = self.ctx.to_device(frame.render)  # a host-only generator's crop (atlas)
        verts = frame.vertices
        verts_dev = self.ctx.upload(verts)
        if (self._prev_out is None or not present or
                np.hypot(*(verts[:, :2] - self._prev_vertices[:, :2]).T).mean() > self.max_step_px):
            self._remember(frame, frame.render, verts_dev)
            return
        flow, visible = flow3d(frame.gbuf, self.triangles, verts_dev, self._prev_vertices_dev,
                               self._prev_depth, out=self._flow)
        warped = warp(self._prev_out, flow, out=self._warped)
        out = self.ctx.xp.empty_like(frame.render)
        _BLEND[array_module_name(out)](frame.render, warped, visible, self.strength,
                                       1.0 / self.residual_scale, out)
        frame.render = out
        self._remember(frame, out, verts_dev)

    def _remember(self, frame: Frame, out, verts_dev) -> None:
        self._prev_out = out
        self._prev_vertices = frame.vertices.copy()
        self._prev_vertices_dev = verts_dev.copy()
        self._prev_depth = frame.gbuf.depth.copy()
