"""Smooth stage: motion-compensated temporal smoothing of the face crop (DESIGN §6).

    Y'_t = (1 − a)·Y_t + a·warp(Y'_{t−1}, F_{t→t−1}),   a = a0 · visible · exp(−(r / r0)²)

F and `visible` come from `flow3d` on the avatar mesh of t and t−1 (UniFaceGAN eq. 11–16), so
the previous output is carried along with the motion (no ghosting, no lag); r is the per-pixel
difference between the warped previous output and the new one, so a real change (an opening
mouth, a blink) passes through at once and only frame-to-frame shimmer is averaged away.
The state resets on a lost track or a jump of the head.

Only the face (face, eyes and mouth triangles) is smoothed: that is where the generators
synthesise appearance that can change from frame to frame (atlas blends, the neural tier, the
mouth cavity); the head layer around it is one prefiltered texture moved along the mesh, which
does not flicker, and skipping it makes the stage about five times cheaper (the face is about
a fifth of the crop).

Runs where the engine's device context puts the crop: the rule is the kernel
`kernels.temporal_blend` (3-D flow, warp and blend fused into one pass over the face's bounding
box), with its numba and CUDA twins.
"""
from __future__ import annotations

import numpy as np

from kernels import GBuffer, temporal_blend
from realtime.core.context import CpuContext
from realtime.core.frame import Frame


class SmoothStage:
    """The smoother on the engine's device context `ctx` (default: the CPU).

    strength a0 in [0, 1); residual_scale r0 in colour levels (0..255); a mean vertex step
    above max_step_px between frames is a cut (the state starts afresh)."""

    name = "smooth"
    device_ready = True
    MAX_STEP_PX = 12.0  # the cut threshold at a profile's own crop size (the engine scales it)

    def __init__(self, rig, strength: float = 0.6, residual_scale: float = 10.0,
                 max_step_px: float = MAX_STEP_PX, enabled: bool = True, ctx=None):
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smooth strength must be in [0, 1), got {strength}")
        self.ctx = ctx if ctx is not None else CpuContext()
        self.rig = rig
        self.triangles = self.ctx.upload(rig.triangles)
        self.face_end = int(rig.ranges["head"][0])   # face, eyes, mouth triangles come first
        self._face_vertices = np.unique(rig.triangles[:self.face_end])
        self.strength = strength
        self.residual_scale = residual_scale
        self.max_step_px = max_step_px
        self.enabled = enabled
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
        # a host-only generator's crop (the atlas tier, or the neural tier's atlas base, ran in
        # `HostStage`) comes back to the device here; HostStage puts the G-buffer back itself, a
        # caller that hands one over on the host gets it moved too
        frame.render = self.ctx.to_device(frame.render)
        g = frame.gbuf
        frame.gbuf = GBuffer(*(self.ctx.to_device(a) for a in (g.tri_id, g.bary, g.depth)))
        verts = frame.vertices
        verts_dev = self.ctx.upload(verts)
        if (self._prev_out is None or not present or
                np.hypot(*(verts[:, :2] - self._prev_vertices[:, :2]).T).mean() > self.max_step_px):
            self._remember(frame, frame.render, verts_dev)
            return
        out = temporal_blend(frame.gbuf, self.triangles, self.face_end, verts_dev,
                             self._prev_vertices_dev, self._prev_depth, frame.render,
                             self._prev_out, self.strength, 1.0 / self.residual_scale,
                             box=self._face_box(verts))
        frame.render = out
        self._remember(frame, out, verts_dev)

    def _face_box(self, verts: np.ndarray) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1): the crop pixels the face's vertices cover now or covered at t−1,
        grown by 2 px, clipped to the crop (host arithmetic on ~470 vertices)."""
        pts = np.concatenate([verts[self._face_vertices, :2],
                              self._prev_vertices[self._face_vertices, :2]])
        s = self.rig.crop_size
        lo = np.clip(np.floor(pts.min(0)) - 2, 0, s).astype(int)
        hi = np.clip(np.ceil(pts.max(0)) + 3, 0, s).astype(int)
        return int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0])

    def _remember(self, frame: Frame, out, verts_dev) -> None:
        self._prev_out = out
        self._prev_vertices = frame.vertices.copy()
        # on the CPU the context's array is the host array itself: share the one copy
        self._prev_vertices_dev = (self._prev_vertices if verts_dev is frame.vertices
                                   else verts_dev.copy())
        self._prev_depth = frame.gbuf.depth.copy()
