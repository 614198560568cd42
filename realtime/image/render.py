"""Render stage: posed rig vertices → G-buffer of the face crop (kernels.rasterize).

On the engine's device context `ctx` (default: the CPU): the triangles are uploaded once, the
two G-buffers are allocated there, and each frame's vertices (host, from fuse) are uploaded
once; on the CPU both uploads are the identity, so nothing is copied.
"""
from __future__ import annotations

from kernels import GBuffer, rasterize
from realtime.core.context import CpuContext
from realtime.core.frame import Frame
from realtime.mesh.rig import Rig


class RenderStage:
    name = "render"
    device_ready = True

    def __init__(self, rig: Rig, ctx=None):
        self.rig = rig
        self.ctx = ctx if ctx is not None else CpuContext()
        self.triangles = self.ctx.upload(rig.triangles)
        # Two buffers, alternated: the smoother (and flow3d) read the previous frame's G-buffer.
        self._buffers = [GBuffer.empty(rig.crop_size, rig.crop_size, xp=self.ctx.xp)
                         for _ in range(2)]
        self._i = 0

    def __call__(self, frame: Frame) -> None:
        self._i ^= 1
        frame.gbuf = rasterize(self.ctx.upload(frame.vertices), self.triangles,
                               self.rig.crop_size, self.rig.crop_size, out=self._buffers[self._i])
