"""Tier 1, "warp": the target's own photo on the recombined mesh, plus the synthetic mouth
cavity (`realtime.tiers.mouth`) where the lips part wider than in the photo."""
from __future__ import annotations

import numpy as np

from kernels import GBuffer, interpolate, texture
from realtime.core.colour import LUMA
from realtime.core.context import CpuContext
from realtime.core.frame import Frame
from realtime.core.ramp import smoothstep
from realtime.face import geometry
from realtime.mesh.rig import Rig
from realtime.tiers.eyes import EyeLayer
from realtime.tiers.folds import FoldLayer
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

    def __init__(self, profile, rig: Rig, ctx=None, eyeballs: bool = True, host_layers: bool | None = None,
                 folds: bool = True):
        ctx = self.ctx = ctx if ctx is not None else CpuContext()
        self.host_layers = not ctx.on_host if host_layers is None else bool(host_layers)
        layers = CpuContext() if self.host_layers else ctx
        xp = ctx.xp
        self.rig = rig
        # The target's own mouth opening (crop px): up to it the photo's real mouth interior is
        # shown as the mesh draws it; beyond it the synthetic cavity takes over: the photo's own
        # teeth (a smiling portrait's) un-stretched over it (`PhotoMouth`), any other interior
        # (lips, a dark gap) stretched and cross-faded (`real_share`).
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
        self.photo_mouth = PhotoMouth(tex, uv, rig.triangles,
                                      self._to_texture[0, 0] / float(np.hypot(a[0, 0], a[0, 1])), layers,
                                      teeth_luma=self.mouth.teeth_luma)
        self.eyes = EyeLayer(image, profile["landmarks"], rig, layers, eyeballs=eyeballs)
        self.folds = FoldLayer(profile["neutral"], layers) if folds else None
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
        """The smile folds, the eyes and the mouth cavity, in place on `out` (arrays of the
        layers' context; the G-buffer's depth is not read)."""
        if self.folds is not None:
            self.folds.apply(gbuf, frame.vertices, out)
        self.eyes.apply(gbuf, frame.vertices, out)
        gap = geometry.mouth_opening(frame.vertices)
        teeth = getattr(frame.state, "teeth", 0.0)
        tongue = getattr(frame.state, "tongue", 0.0)
        if self.mouth.photo_teeth:
            if gap > 1.02 * self._own_gap:        # (at 1.02 times the hung teeth are the mesh's)
                self.mouth.apply(gbuf, self.rig, out, teeth=teeth, photo=self.photo_mouth.bind(gbuf), tongue=tongue)
        else:
            self.mouth.apply(gbuf, self.rig, out, real_share(self._own_gap, gap), teeth=teeth, tongue=tongue)


#: Where the lips part wider than in the photo and the photo shows its teeth
#: (`MouthCavity.photo_teeth`), the photo's own mouth interior hangs from the upper lip at its
#: own height, as real upper teeth do, and the synthetic cavity shows below it; the lowest
#: PHOTO_FADE[0] of it (the teeth's tips, the photo's own lower lip) fades into the cavity once
#: the mouth is PHOTO_FADE[1] times as open as the photo's. Before (`real_share`), the mesh
#: stretched it over the opening up to 2 times the photo's and cross-faded it into the cavity
#: up to 3.2 times: in the demo (frames 150-190) the astronaut's upper row had a jagged edge and
#: a dark notch in the middle (her own teeth and the dark gap under them, stretched), and the
#: cross-fade drew a flat grey band (her teeth over the dark throat) over the lower half of the
#: mouth.
PHOTO_FADE = (0.25, 1.3)
#: ... stretched with the opening up to this many times its own height first (the tips the
#: photo's lower lip hid come into view as it drops), so the dark cavity does not open under
#: the teeth at the first parting of the lips.
PHOTO_STRETCH = 1.4
#: ... and only what reads as teeth hangs: a hung pixel darker than PHOTO_DARK[0] of the teeth's
#: luma (`MouthCavity.teeth_luma`) gives way to the drawn cavity, one lighter than PHOTO_DARK[1]
#: hangs in full (smoothstep between). The astronaut's mouth corners beyond her teeth (luma
#: 20-110, her teeth ~240, the gaps between them 150 and up) hung as a reddish-brown patch at
#: the ends of her upper row over the drawn throat (d10 #96-100).
PHOTO_DARK = (0.45, 0.6)


class PhotoMouth:
    """The photo's own mouth interior, un-stretched, for `MouthCavity.apply(photo=...)`.

    A mouth pixel `a` rows below its column's upper lip edge shows the photo at `a` crop
    pixels below the photo's upper lip: the mesh draws that point `a`·stretch rows below it,
    where the column's stretch is its opening over the photo's own there (the distance of the
    texture coordinates at its two lip edges, in crop pixels). Pixels further from the upper
    lip than the photo's own opening are the synthetic cavity's, and so are hung pixels too dark
    for teeth (`PHOTO_DARK` of `teeth_luma`, the luma of the photo's teeth; 0: all hang). A
    column no more open than in the photo keeps what the mesh drew (stretch 1: the same point)."""

    def __init__(self, texture_image: np.ndarray, uv: np.ndarray, triangles: np.ndarray,
                 texels_per_px: float, ctx=None, teeth_luma: float = 0.0):
        self.ctx = ctx if ctx is not None else CpuContext()
        up = self.ctx.upload
        self.image = up(np.ascontiguousarray(texture_image))
        self.uv = up(np.ascontiguousarray(uv, np.float32))
        self.triangles = up(np.ascontiguousarray(triangles))
        self.texels_per_px = float(texels_per_px)
        self.teeth_luma = float(teeth_luma)
        self._luma = up(LUMA.astype(np.float32))
        self._gbuf = None

    def bind(self, gbuf) -> PhotoMouth:
        """This, reading the texture coordinates of the G-buffer `gbuf` (of the layers' context)."""
        self._gbuf = gbuf
        return self

    def _uv_at(self, rows, cols):
        g = self._gbuf
        tri = self.ctx.xp.maximum(g.tri_id[rows, cols], 0)
        b = g.bary[rows, cols]
        t = self.triangles[tri]
        return ((1.0 - b[:, :1] - b[:, 1:]) * self.uv[t[:, 0]] + b[:, :1] * self.uv[t[:, 1]]
                + b[:, 1:] * self.uv[t[:, 2]])

    def __call__(self, ys, xs, top, bottom, there):
        xp = self.ctx.xp
        f32 = np.float32
        h = self._gbuf.tri_id.shape[0]
        ti, bi = (xp.clip(v.astype(xp.int64), 0, h - 1) for v in (top, bottom))
        uv_top = self._uv_at(ti, xs)
        span = self._uv_at(bi, xs) - uv_top                     # the photo's column, texels
        own = xp.linalg.norm(span, axis=1) / f32(self.texels_per_px)    # its length, crop px
        stretch = (bottom - top) / xp.maximum(own, f32(1e-3))
        if float(stretch.max()) <= 1.0:
            return None
        a = ys.astype(f32) - top                                 # rows below the upper lip
        hold = xp.clip(stretch, f32(1.0), f32(PHOTO_STRETCH))
        # the photo a / hold crop px below its upper lip: along the column's texture segment
        p = a / hold
        t = xp.clip(p / xp.maximum(own, f32(1e-3)), 0.0, 1.0)[:, None]
        uv = xp.ascontiguousarray((uv_top + t * span).astype(f32))
        colours = texture(self.image, uv[None])[0]
        hung = (stretch > 1.0)[:, None]
        colours = xp.where(hung, colours, there)                 # no more open: as the mesh drew it
        lo, hi = PHOTO_FADE
        fade = smoothstep((stretch - 1.0) / (hi - 1.0)) * smoothstep(((p + f32(0.5)) / (own + f32(1.0))
                                                                 - (1.0 - lo)) / lo)
        share = xp.clip(own * hold + f32(1.0) - a, 0.0, 1.0) * (1.0 - fade)
        if self.teeth_luma > 0:
            lo, hi = (f32(v * self.teeth_luma) for v in PHOTO_DARK)
            teeth_like = smoothstep((colours @ self._luma - lo) / (hi - lo))
            share = share * xp.where(hung[:, 0], teeth_like, f32(1.0))
        return colours, share.astype(f32)


#: A photo without teeth to show (`PhotoMouth` for one with): its own mouth interior stretched
#: over an opening this many times its own is shown in full up to [0], and not at all from [1]
#: (smoothstep between): the drawn cavity takes over. At the share own / gap it was before, the
#: astronaut on d10's widest mouths (3.6 times his own) were a quarter his stretched teeth over
#: the drawn throat, a grey slab of vertical stripes, and d0's smiles (1.9 times) half, a grey
#: band over his own teeth (visual audit, stop 66); a photo with teeth now hangs them instead.
REAL_STRETCH = (2.0, 3.2)


def real_share(own_gap: float, gap: float) -> float:
    """How much of the photo's own mouth interior shows at mouth opening `gap` (crop px), the
    photo's own being `own_gap` (see REAL_STRETCH); 1 for a mouth no more open than the photo's."""
    if gap <= 1e-6 or own_gap >= gap:
        return 1.0
    lo, hi = REAL_STRETCH
    return 1.0 - smoothstep((gap / max(own_gap, 1e-6) - lo) / (hi - lo))
