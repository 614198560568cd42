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

Runs where the engine's device context puts the crop. On the CPU, 3-D flow, warp and blend are
one numba pass over the face's bounding box (`_smooth_face_numba`); on CUDA the same rule is
composed from the kernels' CUDA twins (`kernels.flow3d`, `kernels.warp`) and `blend_array` in
cupy. The two agree to float32 rounding (tests/realtime/test_smooth.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from kernels import flow3d, warp
from kernels._dispatch import array_module, array_module_name
from kernels._sampling import FASTMATH, bilinear_into
from kernels.flow3d import DEPTH_EPS, depth_at, surface_motion
from realtime.frame import Frame


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _smooth_face_numba(tri_id, bary, triangles, face_end, verts_t, verts_prev, depth_prev, eps,
                       render, prev, strength, inv_scale, y0, y1, x0, x1, out):
    """The smoothing rule on the face pixels of the box [y0, y1) × [x0, x1): `kernels.flow3d`'s
    flow and visibility, `kernels.warp`'s bilinear sample of `prev` and the blend, in one pass.
    `out` must already hold `render` (every pixel not written here keeps it)."""
    nc = render.shape[2]
    warped = np.empty(nc, np.float32)
    for y in range(y0, y1):
        for x in range(x0, x1):
            t = tri_id[y, x]
            if t < 0 or t >= face_end:
                continue
            wx, wy, qz = surface_motion(tri_id, bary, triangles, verts_t, verts_prev, y, x)
            zp = depth_at(depth_prev, np.float64(x) - wx, np.float64(y) - wy)
            if not (np.isfinite(zp) and qz <= zp + eps):
                continue
            bilinear_into(prev, np.float32(x) + np.float32(-wx), np.float32(y) + np.float32(-wy),
                          warped)
            d = np.float32(0.0)
            for k in range(nc):
                d += abs(warped[k] - render[y, x, k])
            r = d / nc * inv_scale
            a = strength * np.exp(-r * r)
            for k in range(nc):
                out[y, x, k] = render[y, x, k] + a * (warped[k] - render[y, x, k])


def blend_array(render, warped, visible, strength: float, inv_scale: float, out):
    """The smoothing rule as array operations of the arrays' own module (numpy or cupy), given
    the warped previous output and where to blend (`visible`)."""
    xp = array_module(render)
    diff = warped - render
    r = xp.abs(diff).mean(axis=2) * np.float32(inv_scale)
    a = (np.float32(strength) * xp.exp(-r * r) * visible)[..., None]
    out[...] = render + a * diff
    return out


def smooth_cpu(stage: "SmoothStage", frame: Frame, verts_t, box) -> np.ndarray:
    """One smoothing pass on the CPU (numpy arrays): the fused numba loop over `box`."""
    out = frame.render.copy()
    g = frame.gbuf
    _smooth_face_numba(g.tri_id, g.bary, stage.triangles, stage.face_end, verts_t,
                       stage._prev_vertices_dev, stage._prev_depth, np.float64(DEPTH_EPS), frame.render,
                       stage._prev_out, np.float32(stage.strength),
                       np.float32(1.0 / stage.residual_scale), *box, out)
    return out


def smooth_arrays(stage: "SmoothStage", frame: Frame, verts_t, box) -> object:
    """One smoothing pass composed of kernels and array operations (any array module; the
    CUDA path): flow3d over the crop, warp, the face mask, the blend. `box` is not needed:
    whole-crop kernels cost little on a GPU."""
    xp = stage.ctx.xp
    g = frame.gbuf
    flow, visible = flow3d(g, stage.triangles, verts_t, stage._prev_vertices_dev,
                           stage._prev_depth, depth_eps=DEPTH_EPS, out=stage._flow)
    warped = warp(stage._prev_out, flow, out=stage._warped)
    face = (g.tri_id >= 0) & (g.tri_id < stage.face_end)
    out = xp.empty_like(frame.render)
    return blend_array(frame.render, warped, visible & face, stage.strength,
                       1.0 / stage.residual_scale, out)


_PASSES = {"numpy": smooth_cpu, "cupy": smooth_arrays}


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
        self.face_end = int(rig.ranges["head"][0])   # face, eyes, mouth triangles come first
        self._face_vertices = np.unique(rig.triangles[:self.face_end])
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
        box = self._face_box(verts)
        out = _PASSES[array_module_name(frame.render)](self, frame, verts_dev, box)
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
