"""Tier 1, "warp": the target's own photo on the recombined mesh, plus the synthetic mouth
cavity (`realtime.tiers.mouth`) where the lips part wider than in the photo."""
from __future__ import annotations

import numpy as np

from kernels import GBuffer, interpolate, texture
from realtime.core.context import CpuContext
from realtime.core.frame import Frame
from realtime.face import geometry
from realtime.mesh.rig import Rig
from realtime.tiers.eyes import EyeLayer
from realtime.tiers.mouth import MouthCavity


class WarpGenerator:
    """Tier 1: texture the recombined mesh with the target photo; synthesise the mouth.

    Runs in the array module of the device context `ctx` (default: the CPU): the photo, the
    texture coordinates and the triangles are uploaded once; the crop it returns is an array
    of that context (numpy on the CPU, cupy on CUDA).

    The eye and mouth layers run on the host whatever the context (`host_layers`, default:
    on any context but the CPU's): they are a few hundred small array operations a frame, each
    a kernel launch and its Python call on a GPU (18 ms a frame on an H200, against 2.5 ms for
    the same work in numpy on a 2-core CPU). On a device the G-buffer's ids and weights and the
    textured crop come to the host once, the layers draw there, and the crop goes back: all on
    the context's stream, so the generator runs inside ``ctx.activate()`` (as `Engine.process`
    runs every stage)."""

    tier = "warp"
    device_ready = True

    def __init__(self, profile, rig: Rig, ctx=None, eyeballs: bool = True, host_layers: bool | None = None):
        ctx = self.ctx = ctx if ctx is not None else CpuContext()
        self.host_layers = not ctx.on_host if host_layers is None else bool(host_layers)
        layers = CpuContext() if self.host_layers else ctx
        xp = ctx.xp
        self.rig = rig
        # The target's own mouth opening (crop px): up to it the photo's real mouth interior is
        # shown (a smiling portrait's own teeth); beyond it the synthetic cavity fades in.
        a = rig.crop_from_image
        self._own_gap = geometry.mouth_opening(profile["landmarks"].astype(np.float64)) * float(
            np.hypot(a[0, 0], a[0, 1]))
        image = np.ascontiguousarray(profile["image"])
        tex, uv = rig.texture_at_crop_density(image, np.ascontiguousarray(rig.attributes[:, :2]))
        self.image = ctx.upload(tex)
        self.uv = ctx.upload(uv)
        self._host_uv = uv
        self._to_texture = np.diag([tex.shape[1] / image.shape[1], tex.shape[0] / image.shape[0]])
        self.triangles = ctx.upload(rig.triangles)
        self.mouth = MouthCavity(image, profile["landmarks"], layers)
        self.eyes = EyeLayer(image, profile["landmarks"], rig, layers, eyeballs=eyeballs)
        s = rig.crop_size
        self._uv_buf = xp.empty((s, s, 2), np.float32)
        self._out = xp.empty((s, s, 3), np.float32)

    def __call__(self, frame: Frame):
        gbuf = frame.gbuf
        coverage = gbuf.tri_id >= 0
        lids = self.eyes.lid_uv(self._host_uv, frame.vertices, self._to_texture)
        uv = interpolate(gbuf, self.triangles, self.uv if lids is None else self.ctx.upload(lids),
                         out=self._uv_buf)
        out = texture(self.image, uv, coverage, out=self.ctx.xp.empty_like(self._out))
        if not self.host_layers:
            self._layers(gbuf, frame, out)
            return out
        to_host = self.ctx.to_host
        crop = to_host(out)
        self._layers(GBuffer(to_host(gbuf.tri_id), to_host(gbuf.bary), gbuf.depth), frame, crop)
        return self.ctx.upload(crop, out=out)

    def _layers(self, gbuf: GBuffer, frame: Frame, out) -> None:
        """The eyes and the mouth cavity, in place on `out` (arrays of the layers' context; the
        G-buffer's depth is not read)."""
        self.eyes.apply(gbuf, frame.vertices, out)
        gap = geometry.mouth_opening(frame.vertices)
        self.mouth.apply(gbuf, self.rig, out, real_share(self._own_gap, gap),
                         teeth=getattr(frame.state, "teeth", 0.0))


#: The photo's own mouth interior (a smiling portrait's teeth) stretched over an opening this
#: many times its own is shown in full up to [0], and not at all from [1] (smoothstep between):
#: the drawn cavity takes over. At the share own / gap it was before, the astronaut on d10's
#: widest mouths (3.6 times his own) were a quarter his stretched teeth over the drawn throat,
#: a grey slab of vertical stripes, and d0's smiles (1.9 times) half, a grey band over his own
#: teeth; now the first is the drawn cavity and the second his own teeth (visual audit, stop 66).
REAL_STRETCH = (2.0, 3.2)


def real_share(own_gap: float, gap: float) -> float:
    """How much of the photo's own mouth interior shows at mouth opening `gap` (crop px), the
    photo's own being `own_gap` (see REAL_STRETCH); 1 for a mouth no more open than the photo's."""
    if gap <= 1e-6 or own_gap >= gap:
        return 1.0
    lo, hi = REAL_STRETCH
    t = min(max((gap / max(own_gap, 1e-6) - lo) / (hi - lo), 0.0), 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)
