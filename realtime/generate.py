"""Generate stage: G-buffer → face crop. Tier 1, "warp": the target's own texture on the
recombined mesh plus a synthesised mouth cavity (dark interior, teeth) where the lips part.

The tiers are a registry (`TIERS`): later tiers (atlas, neural) register their generator here.
"""
from __future__ import annotations

import numpy as np

from kernels import interpolate, texture
from realtime.frame import Frame
from realtime.rig import Rig

TEETH_COUNT = 8


class MouthCavity:
    """Shades mouth-fan pixels from the interpolated cavity coordinates (m, mx).

    m: +1 at the upper inner lip, −1 at the lower inner lip, 0 at the mouth centre; mx: −1 … +1
    from corner to corner. Upper teeth fill the band under the upper lip, lower teeth a thinner
    band over the lower lip, a dark throat between them; teeth darken towards the corners and
    show thin gaps between them.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, ctx=None):
        from realtime import topology
        from realtime.device import CpuContext

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


class WarpGenerator:
    """Tier 1: texture the recombined mesh with the target photo; synthesise the mouth.

    Runs in the array module of the device context `ctx` (default: the CPU): the photo, the
    texture coordinates and the triangles are uploaded once; the crop it returns is an array
    of that context (numpy on the CPU, cupy on CUDA)."""

    tier = "warp"
    device_ready = True

    def __init__(self, profile, rig: Rig, ctx=None):
        from realtime import geometry
        from realtime.device import CpuContext

        ctx = self.ctx = ctx if ctx is not None else CpuContext()
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
        self.triangles = ctx.upload(rig.triangles)
        self.mouth = MouthCavity(image, profile["landmarks"], ctx)
        s = rig.crop_size
        self._uv_buf = xp.empty((s, s, 2), np.float32)
        self._out = xp.empty((s, s, 3), np.float32)

    def __call__(self, frame: Frame):
        from realtime import geometry

        gbuf = frame.gbuf
        coverage = gbuf.tri_id >= 0
        uv = interpolate(gbuf, self.triangles, self.uv, out=self._uv_buf)
        out = texture(self.image, uv, coverage, out=self.ctx.xp.empty_like(self._out))
        gap = geometry.mouth_opening(frame.vertices)
        self.mouth.apply(gbuf, self.rig, out, min(1.0, self._own_gap / gap) if gap > 1e-6 else 1.0)
        return out


def _warp_generator(profile, rig: Rig, ctx=None, **_):
    return WarpGenerator(profile, rig, ctx)


def _atlas_generator(profile, rig: Rig, ctx=None, **_):
    from realtime.atlas import AtlasGenerator  # tier 2 (realtime/atlas.py), host (numba) only

    return AtlasGenerator(profile, rig)


def _neural_generator(profile, rig: Rig, ctx=None, **options):
    from realtime.neural.tier import NeuralTierGenerator  # tier 3 (torch imported only here)

    return NeuralTierGenerator(profile, rig, ctx, **options)


TIERS = {"warp": _warp_generator, "atlas": _atlas_generator, "neural": _neural_generator}


def make_generator(tier: str, profile, rig: Rig, ctx=None, **options):
    """The generator of `tier` on the device context `ctx` (default: the CPU). `options` are
    the tier's own (the neural tier: backend, cuda_graphs); tiers ignore what they do not use."""
    try:
        cls = TIERS[tier]
    except KeyError:
        raise ValueError(f"tier {tier!r} is not available; choose one of {sorted(TIERS)}") from None
    return cls(profile, rig, ctx, **options)


class GenerateStage:
    name = "generate"

    def __init__(self, generator):
        self.generator = generator

    @property
    def device_ready(self) -> bool:
        """True when the generator takes the frame's arrays on the engine's device."""
        return bool(getattr(self.generator, "device_ready", False))

    def __call__(self, frame: Frame) -> None:
        frame.render = self.generator(frame)
