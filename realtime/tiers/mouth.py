"""The synthetic mouth interior of the photo tiers: a dark graded throat and teeth rows where
the lips part wider than the avatar's photo shows (the warp tier; the atlas tier where no
keyframe opens as wide as asked)."""
from __future__ import annotations

import numpy as np

from realtime.core.context import CpuContext
from realtime.face import topology
from realtime.mesh.rig import Rig

TEETH_COUNT = 8


class MouthCavity:
    """Shades mouth-fan pixels from the interpolated cavity coordinates (m, mx).

    m: +1 at the upper inner lip, −1 at the lower inner lip, 0 at the mouth centre; mx: −1 … +1
    from corner to corner. Upper teeth fill the band under the upper lip, lower teeth a thinner
    band over the lower lip, a dark throat between them; teeth darken towards the corners and
    show thin gaps between them.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, ctx=None):
        h, w = image.shape[:2]

        def mean_colour(idx):
            pts = np.round(landmarks[list(idx), :2]).astype(np.int64)
            pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
            pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
            return image[pts[:, 1], pts[:, 0]].astype(np.float32).mean(0)

        lip = mean_colour(topology.OUTER_LIP)
        skin = mean_colour((50, 280, 4, 151))
        light = float(np.clip(skin.mean() / 170.0, 0.55, 1.1))
        # Array-module agnostic: the shading runs where the G-buffer is (numpy, or cupy on the
        # GPU); `ctx` uploads the constants once (on the CPU upload is the identity).
        self.ctx = ctx if ctx is not None else CpuContext()
        self.xp = self.ctx.xp
        self.throat = self.ctx.upload(np.float32(0.18) * lip)
        self.teeth = self.ctx.upload(np.array([238, 233, 222], np.float32) * light)
        self._rig_arrays: tuple | None = None

    def _arrays(self, rig: Rig):
        """The rig's triangles and attributes in the context's array module (uploaded once)."""
        if self._rig_arrays is None or self._rig_arrays[0] is not rig:
            self._rig_arrays = (rig, self.ctx.upload(rig.triangles), self.ctx.upload(rig.attributes))
        return self._rig_arrays[1:]

    def apply(self, gbuf, rig: Rig, out, real: float) -> None:
        """Blend the synthetic cavity into `out` on the mouth-fan pixels of `gbuf`, keeping a
        fraction `real` of what is there (the real mouth interior of the source)."""
        xp = self.xp
        lo, hi = rig.ranges["mouth"]
        in_mouth = (gbuf.tri_id >= lo) & (gbuf.tri_id < hi)
        if real >= 1.0 or not in_mouth.any():
            return
        triangles, attributes = self._arrays(rig)
        ys, xs = xp.nonzero(in_mouth)
        tri = triangles[gbuf.tri_id[ys, xs]]
        b = gbuf.bary[ys, xs]
        w = xp.stack([1.0 - b[:, 0] - b[:, 1], b[:, 0], b[:, 1]], 1)[:, :, None]
        m, mx = (w * attributes[tri][:, :, 2:4]).sum(1).T
        out[ys, xs] = real * out[ys, xs] + (1.0 - real) * self.shade(m, mx)

    def shade(self, m, mx):
        xp = self.xp
        upper = xp.clip((m - 0.25) / 0.2, 0.0, 1.0)
        lower = xp.clip((-m - 0.55) / 0.15, 0.0, 1.0)
        t = xp.maximum(upper, 0.85 * lower)
        edge = 1.0 - 0.25 * xp.clip((xp.abs(m) - 0.9) / 0.1, 0.0, 1.0)  # shadow under the lips
        gaps = xp.abs(((mx + 1.0) * TEETH_COUNT / 2.0) % 1.0 - 0.5)
        tooth = (1.0 - 0.35 * xp.exp(-((0.5 - gaps) / 0.06) ** 2)) * (1.0 - 0.5 * mx * mx) * edge
        teeth = self.teeth[None] * tooth[:, None]
        return self.throat[None] * (1.0 - t[:, None]) + teeth * t[:, None]
