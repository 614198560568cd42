"""Render stage: posed rig vertices → G-buffer of the face crop (kernels.rasterize)."""
from __future__ import annotations

from kernels import GBuffer, rasterize
from realtime.frame import Frame
from realtime.rig import Rig


class RenderStage:
    name = "render"

    def __init__(self, rig: Rig):
        self.rig = rig
        # Two buffers, alternated: the smoother (and flow3d) read the previous frame's G-buffer.
        self._buffers = [GBuffer.empty(rig.crop_size, rig.crop_size) for _ in range(2)]
        self._i = 0

    def __call__(self, frame: Frame) -> None:
        self._i ^= 1
        frame.gbuf = rasterize(frame.vertices, self.rig.triangles, self.rig.crop_size,
                               self.rig.crop_size, out=self._buffers[self._i])
